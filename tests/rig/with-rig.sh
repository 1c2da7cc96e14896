#!/usr/bin/env bash
# Runs a command with the rig up: reuses a running rig, or starts one and stops it afterwards (also when the
# command fails or is interrupted).
set -uo pipefail
cd "$(dirname "$0")/../.."
py=.venv/bin/python
if ! $py tests/rig/rig.py status >/dev/null 2>&1; then
  $py tests/rig/rig.py up || exit 1
  trap '$py tests/rig/rig.py down' EXIT
fi
# shellcheck disable=SC1091
. "${RIG_HOME:-.rig}/env"
"$@"
