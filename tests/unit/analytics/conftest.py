"""Fixtures for the analytics kernels."""

from __future__ import annotations

import pytest

from datamanager_workers.analytics.candles import CandleArrays
from tests.unit.analytics.synthetic import random_walk


@pytest.fixture(scope="session")
def candles() -> CandleArrays:
    """5,000 hourly candles."""
    return random_walk(5_000)
