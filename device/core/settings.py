"""Every tunable of the coach and the loop: frozen settings with units in names.

Each field carries its unit, allowed range and a one-line help in its metadata;
the config loader validates against these and the example config is written
from them, so the three never disagree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


def setting(default, unit: str = "", help: str = "", range=None, choices=None):
    return field(
        default=default,
        metadata={"unit": unit, "help": help, "range": range, "choices": choices},
    )


@dataclass(frozen=True, slots=True)
class LeanSettings:
    threshold_deg: float = setting(15.0, "deg", "lean: this much more forward than your own upright walking posture", (5.0, 45.0))
    hysteresis_deg: float = setting(5.0, "deg", "lean must drop this far below the threshold to clear", (1.0, 15.0))
    hold_s: float = setting(5.0, "s", "how long a lean is held before the straighten-up cue", (1.0, 60.0))
    repeat_s: float = setting(30.0, "s", "straighten-up cue repeats this often while the lean lasts", (5.0, 600.0))
    filter_s: float = setting(0.25, "s", "time constant of the lean low-pass (gait sway rejection)", (0.05, 2.0))
    coach_while_standing: bool = setting(False, "", "also cue leans while not walking")
    upright_again_cue: bool = setting(True, "", "short cue when the wearer straightens after a cue")
    max_cues_per_10min: int = setting(6, "", "at most this many straighten-up cues in any 10 minutes", (1, 60))
    tracking_only: bool = setting(False, "", "record lean but give no lean cues")


@dataclass(frozen=True, slots=True)
class GaitSettings:
    min_cadence_spm: float = setting(40.0, "steps/min", "slowest cadence that counts as walking", (20.0, 80.0))
    max_cadence_spm: float = setting(180.0, "steps/min", "fastest cadence that counts as walking", (120.0, 240.0))
    min_bout_steps: int = setting(6, "steps", "steps in rhythm before a bout is counted (then counted from its first step); "
                                  "6 = the 4 strides of a Mobilise-D walking bout", (3, 30))
    max_gap_s: float = setting(3.0, "s", "longest pause between steps inside one bout (Mobilise-D: 3 s)", (1.0, 10.0))
    rhythm_tolerance: float = setting(0.4, "", "allowed step-time deviation from the bout's median, as a fraction "
                                      "(real walks change step time 30-40 %)", (0.1, 0.8))
    min_regularity: float = setting(0.4, "", "autocorrelation of vertical acceleration at the step or stride lag "
                                    "that a bout's first steps must reach", (0.0, 0.95))
    min_peak_ms2: float = setting(0.12, "m/s^2", "smallest vertical acceleration peak that can be a step", (0.05, 3.0))
    session_end_pause_s: float = setting(600.0, "s", "a pause this long without walking ends the session", (60.0, 7200.0))
    leg_length_m: float = setting(0.9, "m", "wearer's leg length (greater trochanter to floor), for step length", (0.5, 1.3))
    step_length_factor: float = setting(1.25, "", "Zijlstra & Hof correction factor K of the inverted-pendulum step length", (0.8, 1.6))


@dataclass(frozen=True, slots=True)
class PlanSettings:
    start_date: dt.date | None = setting(None, "date", "first day of the plan (empty: today)")
    start_min: float = setting(10.0, "min", "walking cap per session in the plan's first week", (1.0, 120.0))
    weekly_increase_min: float = setting(5.0, "min", "cap increase per week", (0.0, 30.0))
    max_min: float = setting(30.0, "min", "the cap never grows past this", (1.0, 240.0))
    warning_before_cap_s: float = setting(60.0, "s", "cap-warning cue this long before the cap", (0.0, 600.0))
    stop_repeat_s: float = setting(60.0, "s", "stop cue repeats this often while walking goes on past the cap", (10.0, 600.0))
    sessions_per_day_min: int = setting(2, "", "suggested walks per day, lower end", (1, 10))
    sessions_per_day_max: int = setting(3, "", "suggested walks per day, upper end", (1, 10))
    pain_shorten_min: float = setting(5.0, "min", "a pain report shortens this session's cap by this much", (0.0, 60.0))

    def cap_s(self, today: dt.date) -> float:
        """Walking cap per session on ``today``: start + weekly increase, up to the max."""
        start = self.start_date or today
        weeks = max(0, (today - start).days // 7)
        minutes = min(self.max_min, self.start_min + weeks * self.weekly_increase_min)
        return max(self.start_min, minutes) * 60.0


@dataclass(frozen=True, slots=True)
class UprightSettings:
    still_s: float = setting(2.0, "s", "standing still this long captures the upright reference", (0.5, 10.0))
    max_from_nominal_deg: float = setting(35.0, "deg", "upright must be within this of the mount's up axis", (5.0, 90.0))
    belt_moved_deg: float = setting(10.0, "deg", "standing this far from the upright (or walking far outside a walking posture) "
                                    "means the belt moved: re-zero", (5.0, 30.0))


@dataclass(frozen=True, slots=True)
class CoachSettings:
    lean: LeanSettings = field(default_factory=LeanSettings)
    gait: GaitSettings = field(default_factory=GaitSettings)
    plan: PlanSettings = field(default_factory=PlanSettings)
    upright: UprightSettings = field(default_factory=UprightSettings)


@dataclass(frozen=True, slots=True)
class MountSettings:
    forward: str = setting("+x", "", "sensor axis pointing forward when upright", choices=("+x", "-x", "+y", "-y", "+z", "-z"))
    up: str = setting("+z", "", "sensor axis pointing up when upright", choices=("+x", "-x", "+y", "-y", "+z", "-z"))


@dataclass(frozen=True, slots=True)
class ImuSettings:
    i2c_bus: int = setting(1, "", "I2C bus number (/dev/i2c-N); 3 or another for the i2c-gpio overlay", (0, 32))
    address: int = setting(0x28, "", "BNO055 I2C address (0x28, or 0x29 with ADR high)", choices=(0x28, 0x29))
    fusion_mode: str = setting("IMUPLUS", "", "IMUPLUS (no magnetometer) or NDOF", choices=("IMUPLUS", "NDOF"))
    fault_grace_s: float = setting(2.0, "s", "without valid samples this long: fault cue and re-initialise", (0.2, 60.0))


@dataclass(frozen=True, slots=True)
class PinSettings:
    buzzer: str = setting("GPIO17", "", "buzzer pin (GPIO name); empty for none")
    led: str = setting("GPIO27", "", "LED pin; empty for none")
    motor: str = setting("", "", "vibration motor pin (through a transistor); empty for none")
    button: str = setting("GPIO22", "", "button pin (to ground, internal pull-up); empty for none")


@dataclass(frozen=True, slots=True)
class LoopSettings:
    rate_hz: float = setting(100.0, "Hz", "samples per second", (25.0, 200.0))
    button_hold_s: float = setting(3.0, "s", "holding the button this long captures the upright (calibrate)", (1.0, 10.0))
    fault_cue_repeat_s: float = setting(
        60.0, "s", "while the sensor stays faulty, the fault cue repeats this often (the first comes at imu.fault_grace_s)",
        (5.0, 3600.0))


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    coach: CoachSettings = field(default_factory=CoachSettings)
    mount: MountSettings = field(default_factory=MountSettings)
    imu: ImuSettings = field(default_factory=ImuSettings)
    pins: PinSettings = field(default_factory=PinSettings)
    loop: LoopSettings = field(default_factory=LoopSettings)
