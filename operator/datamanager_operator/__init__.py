"""The controller for DataAudit and AnalyticsJob: informers, a work queue, Leases, one Job per run."""
