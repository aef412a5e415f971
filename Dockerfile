# The one image every claractl Python service runs from on Kubernetes: the platform
# (`claractl platform serve`), the embedded inference service (triton chart, embedded: true)
# and the bundled operators run as Jobs.
#   docker build -t ghcr.io/claractl/claractl:0.1.0 .

# -- front end (dashboard + viewer), built with npm as at install -------------------------
FROM node:20-bookworm-slim AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend ./frontend
COPY claractl/platform/render ./claractl/platform/render
RUN npm run build --silent

# -- Python services ------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/claractl
COPY . .
COPY --from=frontend /src/claractl/platform/render/static/dist ./claractl/platform/render/static/dist
# Editable on purpose: claractl finds schemas/, charts/ and operators/ next to its package
# (claractl/resources.py), so the checkout stays in /opt/claractl.
RUN pip install -e ".[postgresql]" \
 && groupadd --system --gid 10001 clara \
 && useradd --system --uid 10001 --gid clara --home-dir /var/lib/clara --shell /usr/sbin/nologin clara \
 && mkdir -p /var/lib/clara /models \
 && chown clara:clara /var/lib/clara /models
USER 10001:10001
WORKDIR /var/lib/clara
EXPOSE 8765 11112 8080
CMD ["claractl", "platform", "serve", "--state-dir", "/var/lib/clara"]
