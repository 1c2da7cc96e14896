"""First-order recursive smoothers (EMA, Wilder) without a per-row Python loop.

Every smoother here is the linear recurrence ``y[t] = d * y[t-1] + b[t]`` with ``0 <= d < 1``. Unrolled,
``y[t] = d^t * (y[-1] + sum_{k<=t} b[k] * d^-k)``: a cumulative sum, but ``d^-k`` overflows long before a
million rows. So the series is cut into blocks just long enough that ``d^block <= 1e-30``: inside a block the
closed form is one ``cumsum`` along the rows of a (blocks, block) grid with weights ``d^-k <= 1e30`` (far from
overflow), and a block's starting value is the previous block's closed-form end. What that end leaves out,
the carry from two blocks back, is scaled by ``d^block <= 1e-30``, fourteen orders below float64 resolution.
The result matches the sequential loop to rounding (see the tests, which run it over a million rows).
"""

from __future__ import annotations

import math

import numpy as np

from datamanager_workers.analytics.arrays import F64

_NEGLIGIBLE = 1e-30


def linear_recurrence(b: F64, decay: float, initial: float) -> F64:
    """``y[t] = decay * y[t-1] + b[t]`` for t = 0..n-1, starting from ``y[-1] = initial``."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay must be in [0, 1), got {decay}")
    n = b.size
    if n == 0 or decay == 0.0:
        return b.astype(np.float64, copy=True)
    block = min(n, math.ceil(math.log(_NEGLIGIBLE) / math.log(decay)))
    blocks = -(-n // block)
    padded = np.zeros(blocks * block)
    padded[:n] = b
    grid = padded.reshape(blocks, block)
    powers = decay ** np.arange(block, dtype=np.float64)
    local = np.cumsum(grid / powers, axis=1) * powers  # each block's recurrence from a zero start
    carry_in = np.empty(blocks)
    carry_in[0] = initial
    carry_in[1:] = local[:-1, -1]
    if blocks > 1:
        # The start value still reaches block 1, scaled by decay^block; older carries are <= 1e-30 relative.
        carry_in[1] += decay**block * initial
    out: F64 = (local + np.outer(carry_in, powers * decay)).ravel()[:n]
    return out


def ema_from(x: F64, alpha: float, start: int, seed: float) -> F64:
    """Exponential smoothing of ``x`` whose value at ``start`` is ``seed``; NaN before ``start``.

    ``y[t] = y[t-1] + alpha * (x[t] - y[t-1])``: the form shared by EMA (alpha = 2 / (n + 1)) and Wilder's
    smoothing (alpha = 1 / n).
    """
    out = np.full(x.size, np.nan)
    if start >= x.size:
        return out
    out[start] = seed
    out[start + 1 :] = linear_recurrence(alpha * x[start + 1 :], 1.0 - alpha, seed)
    return out


def first_valid(x: F64) -> int:
    """Index of the first non-NaN value (``x.size`` when there is none)."""
    valid = np.flatnonzero(~np.isnan(x))
    return int(valid[0]) if valid.size else x.size


def sma_seeded(x: F64, period: int, alpha: float, seed_end: int | None = None) -> F64:
    """Exponential smoothing seeded as TA-Lib does: with the mean of ``period`` values ending at ``seed_end``.

    ``seed_end`` defaults to the earliest possible index: ``period - 1`` values after the first non-NaN one.
    """
    end = first_valid(x) + period - 1 if seed_end is None else seed_end
    if end >= x.size:
        return np.full(x.size, np.nan)
    return ema_from(x, alpha, end, float(np.mean(x[end - period + 1 : end + 1])))
