"""The blocked closed-form recurrence against the obvious sequential loop."""

from __future__ import annotations

import numpy as np
import pytest

from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.smoothing import ema_from, linear_recurrence


def sequential(b: F64, decay: float, initial: float) -> F64:
    out = np.empty(b.size)
    y = initial
    for index, value in enumerate(b.tolist()):
        y = decay * y + value
        out[index] = y
    return out


@pytest.fixture(scope="module")
def million() -> F64:
    rng = np.random.default_rng(11)
    return 50_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, 1_000_000)))


@pytest.mark.parametrize("period", [2, 9, 26, 1_000, 100_000])
def test_matches_the_loop_over_a_million_rows(million: F64, period: int) -> None:
    alpha = 2.0 / (period + 1)
    ours = linear_recurrence(alpha * million, 1.0 - alpha, million[0])
    np.testing.assert_allclose(ours, sequential(alpha * million, 1.0 - alpha, million[0]), rtol=1e-12)


def test_signed_input_and_a_large_start_decay_away() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(0.0, 1.0, 5_000)
    ours = linear_recurrence(b, 0.9, 1e6)
    reference = sequential(b, 0.9, 1e6)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-9)


def test_zero_decay_and_empty_input() -> None:
    b = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(linear_recurrence(b, 0.0, 99.0), b)
    assert linear_recurrence(np.empty(0), 0.5, 1.0).size == 0


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_rejects_decay_outside_unit_interval(decay: float) -> None:
    with pytest.raises(ValueError, match="decay"):
        linear_recurrence(np.ones(3), decay, 0.0)


def test_ema_from_starts_at_its_seed() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = ema_from(x, 0.5, 2, 10.0)
    np.testing.assert_array_equal(np.isnan(out), [True, True, False, False, False])
    np.testing.assert_allclose(out[2:], [10.0, 7.0, 6.0])
    assert np.isnan(ema_from(x, 0.5, 5, 1.0)).all()
