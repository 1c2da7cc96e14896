"""The audit job: ``datamanager audit`` checks the extractor's candles in SQL, scores each dataset's health
and writes the report to MongoDB."""
