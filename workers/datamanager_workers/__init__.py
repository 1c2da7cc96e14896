"""Code that runs in pods: the stream consumer, the audit job, the analytics job and what they share."""
