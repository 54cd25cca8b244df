"""The project's one FFT low-pass (numpy; replay and the simulator, never the belt's path).

A zero-phase Butterworth-shaped low-pass of order 2, applied in the frequency domain:

- ``passes=1``: gain ``1/sqrt(1+(f/fc)^4)``, the magnitude of one 2nd-order
  Butterworth (-3 dB at ``corner_hz``); the simulator shapes its noise and
  sensor leaks with it;
- ``passes=2``: gain ``1/(1+(f/fc)^4)``, that Butterworth run forwards and
  backwards (-6 dB at ``corner_hz``); replay estimates gravity and the gait
  band with it.

Edges: ``"periodic"`` filters the array as one period of a periodic signal, at
its own length (the simulator's noise is generated that way; at a length with a
large prime factor, as the circular convolution with the filter's impulse
response, one transform at the awkward length for all columns and the rest at
a 5-smooth length of at least twice it: the same output within float
rounding, 3-4x faster); ``"mirror"``
mirrors ``margin`` samples at each end first (a recording is not periodic) and
pads to a 5-smooth FFT length: numpy's FFT at a length with a large prime
factor (19349 = 11 * 1759) falls back to Bluestein's algorithm, about 14x
slower. ``mirror_start``/``mirror_end`` False leave an end unmirrored: the
caller passes real samples there as context (a block cut out of a longer
stream, see ``device.replay``).
"""

from __future__ import annotations

import numpy as np


def five_smooth_length(n: int) -> int:
    """The smallest length >= n whose only prime factors are 2, 3 and 5."""
    if n <= 1:
        return 1
    best = 1 << (n - 1).bit_length()  # a power of two always qualifies
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def largest_prime_factor(n: int) -> int:
    largest, p = 1, 2
    while p * p <= n:
        while n % p == 0:
            largest, n = p, n // p
        p += 1 if p == 2 else 2
    return max(largest, n)


# numpy's FFT factors a length into small primes; past this prime factor it falls back to Bluestein's algorithm
AWKWARD_PRIME_FACTOR = 100


def edge_margin(rate_hz: float, corner_hz: float) -> int:
    """Samples of context that make a cut edge invisible: five corner periods (the response is ~1e-9 by then)."""
    return int(5.0 * rate_hz / max(corner_hz, 0.1))


def _butterworth_denominator(freq_hz: np.ndarray, corner_hz: float) -> np.ndarray:
    ratio_sq = np.square(freq_hz / corner_hz)  # squared twice: numpy's ** 4 is a pow() per element, 8x slower
    return 1.0 + ratio_sq * ratio_sq


def butterworth_power_gain(freq_hz: np.ndarray, corner_hz: float) -> np.ndarray:
    """A 2nd-order Butterworth low-pass's power gain at ``freq_hz``: ``1 / (1 + (f/fc)^4)``."""
    return 1.0 / _butterworth_denominator(freq_hz, corner_hz)


def _gain(n_fft: int, rate_hz: float, corner_hz: float, passes: int) -> np.ndarray:
    freq_hz = np.fft.rfftfreq(n_fft, 1.0 / rate_hz)
    if passes == 2:
        return butterworth_power_gain(freq_hz, corner_hz)
    return 1.0 / np.sqrt(_butterworth_denominator(freq_hz, corner_hz))


def _filter_columns(x: np.ndarray, gain: np.ndarray, n_fft: int, out: np.ndarray, offset: int) -> None:
    """Column by column: one column's spectrum and FFT scratch at a time."""
    n_out = out.shape[0]
    flat_in, flat_out = x.reshape(x.shape[0], -1), out.reshape(n_out, -1)
    for i in range(flat_in.shape[1]):
        spectrum = np.fft.rfft(flat_in[:, i], n=n_fft)
        if spectrum.dtype == np.complex128:
            spectrum *= gain
        else:  # a narrower input: the product is complex128
            spectrum = spectrum * gain
        flat_out[:, i] = np.fft.irfft(spectrum, n=n_fft)[offset : offset + n_out]


def _filter_periodic_by_kernel(x: np.ndarray, gain: np.ndarray, out: np.ndarray) -> None:
    """Circular convolution with the impulse response of ``gain`` (at x's length n), by FFTs of a
    5-smooth length >= 2n - 1: the linear convolution, its tail wrapped onto its head."""
    n = x.shape[0]
    n_fft = five_smooth_length(2 * n - 1)
    kernel_spectrum = np.fft.rfft(np.fft.irfft(gain, n), n_fft)  # the one transform at the awkward length
    flat_in, flat_out = x.reshape(n, -1), out.reshape(n, -1)
    for i in range(flat_in.shape[1]):
        spectrum = np.fft.rfft(flat_in[:, i], n_fft)
        spectrum *= kernel_spectrum
        linear = np.fft.irfft(spectrum, n_fft)
        column = flat_out[:, i]
        column[:] = linear[:n]
        column[: n - 1] += linear[n : 2 * n - 1]


def zero_phase_lowpass(
    x: np.ndarray,
    rate_hz: float,
    corner_hz: float,
    *,
    passes: int = 2,
    edges: str = "mirror",
    margin: int | None = None,
    mirror_start: bool = True,
    mirror_end: bool = True,
) -> np.ndarray:
    """Low-pass ``x`` along axis 0 (see the module docstring); float64 out, same shape."""
    if passes not in (1, 2):
        raise ValueError(f"passes must be 1 or 2, not {passes!r}")
    x = np.asarray(x)
    n = x.shape[0]
    out = np.empty(x.shape, dtype=float)
    if n == 0:
        return out
    if edges == "periodic":
        gain = _gain(n, rate_hz, corner_hz, passes)
        if n > 2 and largest_prime_factor(n) > AWKWARD_PRIME_FACTOR:
            _filter_periodic_by_kernel(x, gain, out)
        else:
            _filter_columns(x, gain, n, out, 0)
        return out
    if edges != "mirror":
        raise ValueError(f"edges must be mirror or periodic, not {edges!r}")
    pad = min(n - 1, edge_margin(rate_hz, corner_hz) if margin is None else margin)
    parts = []
    head = pad if mirror_start else 0
    if head:
        parts.append(x[head:0:-1])
    parts.append(x)
    if mirror_end and pad:
        parts.append(x[-2 : -pad - 2 : -1])
    extended = np.concatenate(parts, axis=0) if len(parts) > 1 else x
    # The DC gain is 1: filtering the deviations from the mean keeps the zero padding
    # up to the 5-smooth length from putting a step into the signal.
    mean = extended.mean(axis=0)
    n_fft = five_smooth_length(extended.shape[0])
    _filter_columns(extended - mean, _gain(n_fft, rate_hz, corner_hz, passes), n_fft, out, head)
    out += mean
    return out
