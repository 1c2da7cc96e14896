"""Trailing-window sums in O(n) whatever the window, without the cancellation of a global running sum.

A running sum over a million prices reaches ~1e11, and differencing two such sums to get one window's total
loses about log10(n / window) digits. Here the series is cut into blocks as long as the window, so every
window is the tail of one block plus the head of the next: ``out[i] = head(i) + tail(i - window)``, where
``head`` is the in-block prefix sum up to ``i`` and ``tail`` the in-block sum after ``i - window``. Both are
sums of at most ``window`` terms and neither is formed by subtraction, so for same-signed data the error is
that of summing the window directly.

Results are right-aligned: ``out[i]`` covers ``x[i - window + 1 .. i]``; NaN where the window is not full.
"""

from __future__ import annotations

import numpy as np

from datamanager_workers.analytics.arrays import F64, I64


def _blocks(x: F64, window: int) -> tuple[F64, int]:
    """``x`` zero-padded to whole blocks of ``window`` and reshaped to (blocks, window)."""
    blocks = -(-x.size // window)
    padded = np.zeros(blocks * window)
    padded[: x.size] = x
    return padded.reshape(blocks, window), blocks


def _head_tail(x: F64, window: int) -> tuple[F64, F64]:
    """In-block inclusive prefix sums, and in-block sums strictly after each index (led by a 0 for -1)."""
    grid, _ = _blocks(x, window)
    head = np.cumsum(grid, axis=1).ravel()[: x.size]
    after = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1]
    after = np.concatenate((after[:, 1:], np.zeros((after.shape[0], 1))), axis=1).ravel()[: x.size]
    return head, np.concatenate(([0.0], after))


def _check(window: int) -> None:
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


def rolling_sum(x: F64, window: int) -> F64:
    """Sum of each trailing window of ``window`` values."""
    _check(window)
    out = np.full(x.size, np.nan)
    if x.size < window:
        return out
    head, tail = _head_tail(x, window)
    ends = np.arange(window - 1, x.size)
    # ``tail`` is led by a 0, so index ends - window + 1 means "after ends - window" (0 for the first window).
    out[window - 1 :] = head[ends] + tail[ends - window + 1]
    return out


def rolling_mean(x: F64, window: int) -> F64:
    return rolling_sum(x, window) / window


def rolling_var(x: F64, window: int, ddof: int = 1) -> F64:
    """Variance of each trailing window (sample variance by default).

    Uses sum-of-squares minus squared sum on data shifted by its overall mean, which cancels badly only when
    a window's mean sits many standard deviations away from the overall mean: never the case for the log
    returns this is used on. Tiny negative results of rounding are clipped to 0.
    """
    if window <= ddof:
        raise ValueError(f"window must exceed ddof={ddof}, got {window}")
    centred = x - np.mean(x) if x.size else x
    sums = rolling_sum(centred, window)
    squares = rolling_sum(centred * centred, window)
    var: F64 = (squares - sums * sums / window) / (window - ddof)
    return np.maximum(var, 0.0, where=~np.isnan(var), out=var)


def rolling_slope(y: F64, window: int) -> F64:
    """Least-squares slope of ``y`` against its position, per trailing window (units of y per step).

    slope = sum((k - kbar) * y_k) / sum((k - kbar)^2) with k = 0..window-1. The position-weighted sum is built
    from block-local positions (< window) rather than global ones (up to n), so no term is larger than
    ``window`` times a value; shifting ``y`` by its first value leaves the slope unchanged and keeps values
    small.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    out = np.full(y.size, np.nan)
    if y.size < window:
        return out
    u = y - y[0]
    local = np.tile(np.arange(window, dtype=np.float64), -(-y.size // window))[: y.size]
    head_u, tail_u = _head_tail(u, window)
    head_lu, tail_lu = _head_tail(local * u, window)
    ends = np.arange(window - 1, y.size)
    starts = ends - window + 1  # index into the tails (shifted by their leading 0)
    pos = local[ends]  # block-local position of the window's last value
    # In-window position k of a value at block-local position l: l - pos + window - 1 in the end's block,
    # l - pos - 1 in the block before it.
    weighted = (
        head_lu[ends] + (window - 1 - pos) * head_u[ends] + tail_lu[starts] - (pos + 1) * tail_u[starts]
    )
    total = head_u[ends] + tail_u[starts]
    centre = (window - 1) / 2.0
    denominator = window * (window * window - 1) / 12.0
    out[window - 1 :] = (weighted - centre * total) / denominator
    return out


# Windows with a gap are computed one by one, this many values at a time, to bound the memory they take.
_CHUNK_VALUES = 1 << 20


def rolling_time_slope(y: F64, steps: I64, window: int) -> F64:
    """Least-squares slope of ``y`` against time per trailing window of ``window`` values, in units of y per
    interval; ``steps`` is each value's time in intervals (ascending integers).

    Where a window's values are consecutive in time this is ``rolling_slope``. A window that spans a gap is
    regressed on its values' times directly, centred on its own means (two passes, no cancellation); there
    are as many such windows as gaps times the window at most.
    """
    out = rolling_slope(y, window)
    if y.size < window:
        return out
    ends = np.arange(window - 1, y.size)
    spanning = ends[steps[ends] - steps[ends - window + 1] != window - 1]
    if spanning.size == 0:
        return out
    times = np.lib.stride_tricks.sliding_window_view(steps.astype(np.float64), window)
    values = np.lib.stride_tricks.sliding_window_view(y, window)
    per_chunk = max(1, _CHUNK_VALUES // window)
    for first in range(0, spanning.size, per_chunk):
        chosen = spanning[first : first + per_chunk] - (window - 1)
        x = times[chosen] - times[chosen].mean(axis=1, keepdims=True)
        v = values[chosen] - values[chosen].mean(axis=1, keepdims=True)
        out[chosen + window - 1] = np.einsum("ij,ij->i", x, v) / np.einsum("ij,ij->i", x, x)
    return out
