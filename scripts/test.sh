#!/usr/bin/env bash
# Run the test suite with the services it needs: PostgreSQL, and a Kubernetes cluster with
# claractl's images loaded (scripts/test-cluster.sh: the single-node cluster of ../shared/kube, or
# yours with CLARA_TEST_KUBECONFIG). dcmtk, Orthanc and Chromium are started by the tests
# themselves. Extra arguments go to pytest. What this run started, it stops.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"   # scripts/setup.sh's venv: claractl, python, pytest
export TCP_NODELAY=1   # Debian's dcmtk/Orthanc stall ~45 ms per instance without it

eval "$(scripts/postgres.sh start)"   # exports CLARA_TEST_POSTGRES_URL
# Stop the server only if this run started it (another run may be using it).
cleanup() {
  [ "${CLARA_TEST_POSTGRES_STARTED:-}" = 1 ] && { scripts/postgres.sh stop >/dev/null 2>&1 || true; }
  [ "${CLARA_TEST_CLUSTER_STARTED:-}" = 1 ] && { "${CLARA_TEST_CLUSTER_DOWN}" >/dev/null 2>&1 || true; }
  return 0
}
trap cleanup EXIT
cluster_env=$(scripts/test-cluster.sh) || { echo "test.sh: the test cluster did not start" >&2; exit 1; }
eval "$cluster_env"                   # CLARA_TEST_KUBECONFIG, CLARA_TEST_IMAGE_DIR
python -m pytest -q "$@"
