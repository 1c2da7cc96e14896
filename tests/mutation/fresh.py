"""The fresh-process re-check of mutants; run.py runs it in mutmut's ``mutants/`` folder (its working dir).

It imports what the tests need that is not ours (the list run.py wrote: pytest, pydantic, lightkube, ...),
checks that none of our modules or tests is imported yet, then forks one process per mutant. In each, our
modules and test modules are imported for the first time with the mutant already active (MUTANT_UNDER_TEST),
so no value computed at import time and no module-level cache can come from unmutated code: the same
verdict as a new interpreter, without paying for its start-up hundreds of times.

stdin: one JSON object per line, ``{"mutant": name, "tests": [paths]}`` (mutant "" runs the tests unmutated),
or ``{"mutant": "", "imports": [modules]}`` to check that those are imported from here.
stdout: one JSON object per line, ``{"mutant": name, "exit": pytest's exit code}``, in completion order;
-9 when a run outlived ``--wall-timeout``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

OURS = ("datamanager", "datamanager_operator", "datamanager_workers", "tests", "conftest")


def _child(job: dict[str, Any], per_test_timeout: int) -> int:
    os.environ["MUTANT_UNDER_TEST"] = job["mutant"]
    if "imports" in job:
        here = os.getcwd()
        wrong = [m for m in job["imports"] if not str(importlib.import_module(m).__file__).startswith(here)]
        if wrong:
            print(f"imported from elsewhere than {here}: {wrong}", file=sys.stderr, flush=True)
        return 1 if wrong else 0
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    import pytest

    args = ["-x", "-q", "-p", "no:cacheprovider", f"--timeout={per_test_timeout}", *job["tests"]]
    return int(pytest.main(args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preload", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--per-test-timeout", type=int, default=60)
    parser.add_argument("--wall-timeout", type=float, default=1800.0)
    args = parser.parse_args()
    sys.path[0] = os.getcwd()  # the mutated copies, not this script's folder
    for name in args.preload.read_text().split():
        try:
            importlib.import_module(name)
        except Exception:
            continue  # a module that cannot be preloaded is imported by each child instead
    early = sorted(n for n in sys.modules if n.partition(".")[0] in OURS)
    if early:
        raise SystemExit(f"preloading imported our own modules, the re-check would not be fresh: {early}")
    import pytest  # noqa: F401 - preloaded for the children

    jobs = [json.loads(line) for line in sys.stdin if line.strip()]
    running: dict[int, tuple[str, float]] = {}

    def reap() -> None:
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            mutant, _ = running.pop(pid)
            print(json.dumps({"mutant": mutant, "exit": os.waitstatus_to_exitcode(status)}), flush=True)
        for child, (_, started) in running.items():
            if time.monotonic() - started > args.wall_timeout:
                os.kill(child, signal.SIGKILL)  # reaped as -9 on a later round

    for job in jobs:
        while len(running) >= max(args.jobs, 1):
            reap()
            time.sleep(0.02)
        pid = os.fork()
        if pid == 0:
            try:
                code = _child(job, args.per_test_timeout)
            except BaseException:
                code = 70
            os._exit(code)
        running[pid] = (job["mutant"], time.monotonic())
    while running:
        reap()
        time.sleep(0.02)
    return 0


if __name__ == "__main__":
    sys.exit(main())
