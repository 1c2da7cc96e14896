"""The caller's summary: one JSON object of at most ``SUMMARY_MAX_BYTES``, printed to stdout and written to
the container's termination-message file, where the operator reads it without any API access to the pod.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from datamanager.contract import DEFAULT_TERMINATION_LOG, SUMMARY_MAX_BYTES, RunSummary

log = logging.getLogger(__name__)
_MESSAGE_FLOOR = 200  # a message is cut only after every list is gone, and never below this


def _encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _longest_list(node: Any) -> list[Any] | None:
    """The longest non-empty list anywhere in the document: cutting it frees the most room."""
    best: list[Any] | None = None
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    if isinstance(node, list) and node:
        best = node
    for child in children:
        candidate = _longest_list(child)
        if candidate is not None and (best is None or len(candidate) > len(best)):
            best = candidate
    return best


def fit_summary(summary: RunSummary, limit: int = SUMMARY_MAX_BYTES) -> str:
    """Compact JSON within ``limit`` bytes: lists lose their last entries (worst-first lists keep the
    worst), then the message is shortened; ``truncated`` says so."""
    document = summary.model_dump(mode="json", by_alias=True, exclude_none=True)
    while len(_encode(document)) > limit:
        document["truncated"] = True
        longest = _longest_list(document)
        if longest is not None:
            longest.pop()
            continue
        overflow = len(_encode(document)) - limit
        message = str(document.get("message", ""))
        keep = max(_MESSAGE_FLOOR, len(message.encode()) - overflow - 3)
        if keep >= len(message.encode()):
            raise ValueError(f"a summary without lists still exceeds {limit} bytes")
        document["message"] = message.encode()[:keep].decode(errors="ignore") + "..."
    return _encode(document).decode()


def write_summary(summary: RunSummary, path: Path) -> str:
    """Print the summary and write it to ``path``. Kubernetes creates the termination-message file before
    the container starts; elsewhere the default path is left alone, and any path whose directory is
    missing is skipped, so local runs just print."""
    text = fit_summary(summary)
    print(text, flush=True)
    default = path == Path(DEFAULT_TERMINATION_LOG)
    if path.exists() or (path.parent.is_dir() and not default):
        try:
            path.write_text(text)
        except OSError as exc:
            log.warning("cannot write the summary to %s: %s", path, exc.strerror or exc)
    return text
