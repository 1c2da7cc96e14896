"""The analytics job: metric families computed from the extractor's candles, results in MongoDB."""
