#!/usr/bin/env bash
# Install everything claractl, its demo and its tests need on a fresh Debian machine, into a
# virtual environment in the checkout (.venv). Idempotent: a second run only checks.
#
# The venv is made from Debian's own python3 when it is >= 3.11.2 (Debian 12's, and the minimum
# pyproject.toml declares), so what CI tests is what Debian users run; CLARA_PYTHON=/path/to/python
# overrides. Debian refuses system-wide pip installs (PEP 668), hence the venv; nothing here needs
# it activated.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/storescu ] || need_apt+=(dcmtk)   # not `command -v`: pip's pynetdicom ships a storescu script too
command -v Orthanc >/dev/null || need_apt+=(orthanc)
command -v chromium >/dev/null || need_apt+=(chromium)
[ -x /usr/lib/postgresql/15/bin/postgres ] || ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v npm >/dev/null || need_apt+=(npm)
command -v rsyslogd >/dev/null || need_apt+=(rsyslog rsyslog-openssl)   # the audit-repository peer (tests/audit)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts Orthanc as a service on install; tests run their own instances.
  (service orthanc stop || true) >/dev/null 2>&1
  (service rsyslog stop || true) >/dev/null 2>&1      # likewise: tests run their own rsyslogd
fi

python=${CLARA_PYTHON:-}
if [ -z "$python" ]; then
  for candidate in /usr/bin/python3 python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11, 2))' 2>/dev/null; then
      python=$candidate; break
    fi
  done
fi
[ -n "$python" ] || { echo "setup: no python3 >= 3.11.2 found (set CLARA_PYTHON)" >&2; exit 1; }

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11, 2))' 2>/dev/null; then
  echo "setup: python venv .venv ($("$python" --version) from $python)"
  rm -rf .venv
  "$python" -m venv .venv
fi

echo "setup: .venv/bin/pip install -e .[test]"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
CLARA_PYTHON="$python" scripts/clara-client-env.sh   # NVIDIA's client, the Clara API tests' peer

if [ -f package.json ]; then
  echo "setup: npm ci && npm run build"
  npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
fi
echo "setup: done (put claractl on PATH: export PATH=\"$(pwd)/.venv/bin:\$PATH\")"
