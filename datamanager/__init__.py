"""data-manager: audits and analyses the extractor's candles, counts the NATS stream."""

__version__ = "0.1.0"
