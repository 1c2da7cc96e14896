"""The stream consumer: counts the stream by type, symbol and malformed reason; persists nothing."""
