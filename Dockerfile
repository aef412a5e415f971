# docker.io/claractl/platform:<version>: the image every claractl Python service runs from on
# Kubernetes: the platform (`claractl platform serve`, with the DICOM SCP and the dashboard) and
# the embedded inference service (`python -m claractl.platform.inference`). Operators have images
# of their own (operators/*/Dockerfile).
# Built by scripts/build-images.sh (docs/kubernetes.md, "Image"); by hand, from the repository root,
# after `npm ci && npm run build` (scripts/setup.sh) has built the dashboard:
#   docker build -t docker.io/claractl/platform:0.1.0 .
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# The same first steps in every claractl Dockerfile (keep them identical: builders then share these
# layers): a venv, because Debian's own python3 refuses system-wide pip installs (PEP 668), and
# the unprivileged user 10001.
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv \
 && groupadd --system --gid 10001 clara \
 && useradd --system --uid 10001 --gid clara --home-dir /var/lib/clara --no-create-home \
      --shell /usr/sbin/nologin clara
# pip settings of the build machine (local wheel folders, CA bundle), when scripts/build-images.sh
# mounts them; unset in a plain `docker build`.
ARG PIP_CONFIG_FILE
# The libraries the operator images install first, with the same lines (shared layers), then
# the dependencies from pyproject.toml alone, so that a code change does not reinstall them.
RUN pip install "numpy>=1.26,<3" "nibabel>=5,<6"
RUN pip install "tritonclient[http,grpc]>=2.40,<3"
COPY pyproject.toml /opt/claractl/
RUN python -c 'import tomllib; p = tomllib.load(open("/opt/claractl/pyproject.toml", "rb"))["project"]; \
print("\n".join(p["dependencies"] + p["optional-dependencies"]["postgresql"]))' > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt
COPY setup.py README.md /opt/claractl/
COPY schemas /opt/claractl/schemas
COPY charts /opt/claractl/charts
COPY blueprints /opt/claractl/blueprints
COPY operators /opt/claractl/operators
# Includes the dashboard built on the host (claractl/platform/render/static/dist): no Node image
# is needed, and it is the same build the local target serves.
COPY claractl /opt/claractl/claractl
# Editable on purpose: claractl finds schemas/, charts/ and operators/ next to its package
# (claractl/resources.py). Bytecode now: the root file system is read-only in the pod.
RUN test -f /opt/claractl/claractl/platform/render/static/dist/index.html \
 || { echo "no dashboard build in claractl/platform/render/static/dist: run npm ci && npm run build" >&2; exit 1; }; \
 pip install --no-deps -e /opt/claractl \
 && python -m compileall -q /opt/claractl/claractl /opt/claractl/operators \
 && mkdir -p /var/lib/clara /models \
 && chown clara:clara /var/lib/clara /models
USER 10001:10001
ENV HOME=/var/lib/clara
WORKDIR /var/lib/clara
EXPOSE 8765 11112 8080 8000 8001
CMD ["claractl", "platform", "serve", "--state-dir", "/var/lib/clara"]
