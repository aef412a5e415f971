#!/usr/bin/env bash
# Run the test suite with the services it needs (PostgreSQL; dcmtk, Orthanc and Chromium are
# started by the tests themselves). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # scripts/setup.sh's venv: claractl, python, pytest
export TCP_NODELAY=1   # Debian's dcmtk/Orthanc stall ~45 ms per instance without it

eval "$(scripts/postgres.sh start)"   # exports CLARA_TEST_POSTGRES_URL
# Stop the server only if this run started it (another run may be using it).
[ "${CLARA_TEST_POSTGRES_STARTED:-}" = 1 ] && trap 'scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
python -m pytest -q "$@"
