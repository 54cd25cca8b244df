"""One root error for walkcoach; each kind also subclasses the matching builtin."""


class WalkcoachError(Exception):
    """Root of every error walkcoach raises on purpose."""


class ImuError(WalkcoachError, OSError):
    """The IMU could not be read, or what it returned is not a valid sample."""


class SensorPaused(ImuError):
    """No sample this tick, on purpose: the sensor is busy with something it was asked to do (the BNO055's
    offset capture in CONFIG mode, ~30 ms once). Lost time for the coach, but no fault and no read error."""


class EndOfStream(WalkcoachError, EOFError):
    """A finite sample source (a simulated scenario, a recording) has no more samples."""


class ConfigError(WalkcoachError, ValueError):
    """A configuration value is missing, malformed or out of range."""


class BackendError(WalkcoachError, RuntimeError):
    """A hardware backend could not be opened (unknown name, missing library, no device)."""
