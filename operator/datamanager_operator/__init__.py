"""The Kopf controller for DataAudit and AnalyticsJob."""
