"""Volatility: close-to-close, Parkinson, Garman-Klass, Rogers-Satchell, Yang-Zhang, and ATR.

Per candle, over a trailing window of ``w`` candles, with natural logs:

- close-to-close: sample standard deviation of r = ln(C_t / C_t-1)
- Parkinson: sqrt(mean(ln(H/L)^2) / (4 ln 2))
- Garman-Klass: sqrt(mean(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2))
- Rogers-Satchell: sqrt(mean(ln(H/C) ln(H/O) + ln(L/C) ln(L/O)))
- Yang-Zhang: sqrt(s_o^2 + k s_c^2 + (1 - k) RS) with s_o^2, s_c^2 the sample variances of ln(O_t / C_t-1) and
  ln(C_t / O_t), RS the Rogers-Satchell mean and k = 0.34 / (1.34 + (w + 1) / (w - 1))

Each is annualised by sqrt(periods per year), 365 x candles per day. ATR is Wilder's, period 14, in price
units (and as a percentage of the close).

Gaps (``gaps``): a return, an overnight return and a true range are defined only between adjacent candles, so
close-to-close holds the last ``w`` such returns, Yang-Zhang's three parts the last ``w`` candles that follow
an adjacent one, and ATR smooths the defined true ranges; Parkinson, Garman-Klass and Rogers-Satchell are
made of single candles and hold the last ``w`` candles.
"""

from __future__ import annotations

import math

import numpy as np

from datamanager.api.analyticsjob import FamilyWindows, MetricFamily
from datamanager.api.common import Interval
from datamanager_workers.analytics.arrays import F64
from datamanager_workers.analytics.candles import CandleArrays
from datamanager_workers.analytics.gaps import Defined, adjacent, over_defined
from datamanager_workers.analytics.indicators import atr
from datamanager_workers.analytics.model import FamilyResult, Value, evaluate, last, periods_per_year
from datamanager_workers.analytics.rolling import rolling_mean, rolling_var

FAMILY = MetricFamily.VOLATILITY
ATR_PERIOD = 14
_LN2 = math.log(2.0)


def required(windows: FamilyWindows) -> int:
    """w returns need w + 1 candles; ATR needs its period plus the first previous close."""
    return max(windows.volatility + 1, ATR_PERIOD + 1)


def parameters(windows: FamilyWindows, interval: Interval) -> dict[str, Value]:
    return {
        "window": windows.volatility,
        "atr_period": ATR_PERIOD,
        "periods_per_year": periods_per_year(interval),
        "annualised": True,
    }


def log_returns(close: F64) -> F64:
    """ln(C_t / C_t-1) at every candle but the first (NaN); whether it counts is the caller's ``pairs``."""
    out = np.full(close.size, np.nan)
    out[1:] = np.log(close[1:] / close[:-1])
    return out


def close_to_close(c: CandleArrays, window: int, interval: Interval) -> F64:
    """Annualised sample standard deviation of the last ``window`` returns between adjacent candles."""
    pairs = adjacent(c.open_time, interval.seconds)
    variance = over_defined(log_returns(c.close), pairs, lambda r: rolling_var(r, window))
    out: F64 = np.sqrt(variance) * math.sqrt(periods_per_year(interval))
    return out


def series(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> dict[str, F64]:
    w = windows.volatility
    scale = math.sqrt(periods_per_year(interval))
    pairs = adjacent(c.open_time, interval.seconds)
    log_hl = np.log(c.high / c.low)
    log_co = np.log(c.close / c.open)
    log_hc, log_ho = np.log(c.high / c.close), np.log(c.high / c.open)
    log_lc, log_lo = np.log(c.low / c.close), np.log(c.low / c.open)
    rs_term = log_hc * log_ho + log_lc * log_lo

    # Yang-Zhang's three parts over the same candles: those whose overnight return is defined.
    after_pair = Defined(pairs)
    overnight = np.full(c.size, np.nan)
    overnight[1:] = np.log(c.open[1:] / c.close[:-1])
    overnight_var = after_pair.spread(rolling_var(after_pair.take(overnight), w))
    open_close_var = after_pair.spread(rolling_var(after_pair.take(log_co), w))
    paired_rs = after_pair.spread(rolling_mean(after_pair.take(rs_term), w))
    k = 0.34 / (1.34 + (w + 1) / (w - 1))
    yang_zhang = overnight_var + k * open_close_var + (1.0 - k) * paired_rs

    price_atr = atr(c.high, c.low, c.close, ATR_PERIOD, pairs)
    return {
        "close_to_close": close_to_close(c, w, interval),
        "parkinson": np.sqrt(rolling_mean(log_hl * log_hl, w) / (4.0 * _LN2)) * scale,
        "garman_klass": np.sqrt(
            np.maximum(rolling_mean(0.5 * log_hl * log_hl - (2.0 * _LN2 - 1.0) * log_co * log_co, w), 0.0)
        )
        * scale,
        "rogers_satchell": np.sqrt(np.maximum(rolling_mean(rs_term, w), 0.0)) * scale,
        "yang_zhang": np.sqrt(np.maximum(yang_zhang, 0.0)) * scale,
        "atr": price_atr,
        "atr_percent": 100.0 * price_atr / c.close,
    }


def compute(c: CandleArrays, windows: FamilyWindows, interval: Interval) -> FamilyResult:
    def values() -> dict[str, Value]:
        return {name: last(column) for name, column in series(c, windows, interval).items()}

    return evaluate(
        FAMILY, windows.volatility, parameters(windows, interval), c.size, required(windows), values
    )
