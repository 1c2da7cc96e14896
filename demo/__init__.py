"""`make demo`: the whole system on the local cluster, from nothing to health scores."""
