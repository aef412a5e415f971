#!/usr/bin/env bash
# Run the test suite with the services it needs (PostgreSQL; dcmtk, Orthanc and Chromium are
# started by the tests themselves). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export TCP_NODELAY=1   # Debian's dcmtk/Orthanc stall ~45 ms per instance without it

eval "$(scripts/postgres.sh start)"   # exports CLARA_TEST_POSTGRES_URL
trap 'scripts/postgres.sh stop >/dev/null 2>&1 || true' EXIT
python3 -m pytest -q "$@"
