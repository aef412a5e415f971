#!/usr/bin/env bash
# The environment Clara users run NVIDIA's client in: nvidia-clara-client 0.8.1.7 with
# protobuf < 4, in its own venv (.venv-clara-client). The tests of the Clara Platform API
# (tests/clara_api) drive claractl from it, as an outside peer, the way dcmtk and Orthanc are.
#
# Why its own venv: the client's generated *_pb2 modules (protoc of 2020) need protobuf 3.x;
# under protobuf >= 4 they only import with PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python, and
# even then their map fields (every `metadata` argument) do not work. claractl itself needs
# protobuf >= 4 (tritonclient). Idempotent: a second run only checks.
#
# It also gets claractl's token hook (claractl/platform/clara_api/client_token.py, as module
# claractl_clara_token + a .pth line): with CLARA_API_TOKEN set, Clara scripts send the platform
# token on Clara API calls, unchanged (docs/clara-api.md "Authentication").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CLARA_CLIENT_VENV:-.venv-clara-client}
python=${CLARA_PYTHON:-/usr/bin/python3}
if ! "$venv/bin/python" -c 'import nvidia_clara.jobs_client, google.protobuf as p; assert p.__version__ < "4"' 2>/dev/null; then
  echo "setup: $venv (nvidia-clara-client 0.8.1.7, protobuf < 4)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "nvidia-clara-client==0.8.1.7" "protobuf>=3.20,<4" "grpcio>=1.50"
fi
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp claractl/platform/clara_api/client_token.py "$site/claractl_clara_token.py"
echo "import claractl_clara_token" > "$site/claractl_clara_token.pth"
