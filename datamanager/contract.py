"""The contract between the operator and the worker pods it starts.

Workers get their settings from environment variables (the operator sets them; a person may too), report
through their exit code and a small JSON summary in the container termination message, and write the full
results to MongoDB.
"""

from __future__ import annotations

from enum import IntEnum

# Environment variables a worker honours. Flags override them; they override the spec file.
ENV_SPEC = "DATAMANAGER_SPEC"  # the resource's spec, as JSON
ENV_SPEC_FILE = "DATAMANAGER_SPEC_FILE"  # path to a spec or whole manifest (YAML or JSON)
ENV_MYSQL_DSN = "DATAMANAGER_MYSQL_DSN"  # from the source Secret, by reference
ENV_MONGODB_URI = "DATAMANAGER_MONGODB_URI"  # from the sink Secret, by reference
ENV_RUN_ID = "DATAMANAGER_RUN_ID"
ENV_RESOURCE = "DATAMANAGER_RESOURCE"  # <kind>/<namespace>/<name>
ENV_SHARDS = "DATAMANAGER_SHARDS"  # number of shards of an Indexed Job; index from JOB_COMPLETION_INDEX
ENV_SHARD_INDEX = "JOB_COMPLETION_INDEX"
ENV_TERMINATION_LOG = "DATAMANAGER_TERMINATION_LOG"  # where the summary goes; default below

DEFAULT_TERMINATION_LOG = "/dev/termination-log"
SUMMARY_MAX_BYTES = 4096


class ExitCode(IntEnum):
    """Worker exit codes; the operator's podFailurePolicy maps them (permanent fails the Job at once)."""

    OK = 0  # the run finished, whatever the health score
    INTERNAL = 1  # a bug: retried per backoffLimit
    INVALID_CONFIG = 2  # permanent: never worth a retry
    SOURCE_UNAVAILABLE = 3  # transient: MySQL unreachable, refused or failing
    SINK_UNAVAILABLE = 4  # transient: MongoDB unreachable, refused or failing

    @property
    def permanent(self) -> bool:
        return self is ExitCode.INVALID_CONFIG
