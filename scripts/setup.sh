#!/usr/bin/env bash
# Install everything claractl, its demo and its tests need on a fresh Debian machine.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/storescu ] || need_apt+=(dcmtk)   # not `command -v`: pip's pynetdicom ships a storescu script too
command -v Orthanc >/dev/null || need_apt+=(orthanc)
command -v chromium >/dev/null || need_apt+=(chromium)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts Orthanc as a service on install; tests run their own instances.
  (service orthanc stop || true) >/dev/null 2>&1
fi

echo "setup: pip install -e .[test]"
python3 -m pip install -q --disable-pip-version-check -e ".[test]"

if [ -f package.json ]; then
  echo "setup: npm ci && npm run build"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
fi
echo "setup: done"
