#!/usr/bin/env bash
# Runs a command with the rig up: reuses a running rig, or starts one and stops it afterwards.
set -uo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
started=0
if ! $py tests/rig/rig.py status >/dev/null 2>&1; then
  $py tests/rig/rig.py up || exit 1
  started=1
fi
# shellcheck disable=SC1091
. "${RIG_HOME:-.rig}/env"
"$@"
rc=$?
[ "$started" = 1 ] && $py tests/rig/rig.py down
exit $rc
