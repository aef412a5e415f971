#!/usr/bin/env bash
# Builds claractl's container images: the platform (Dockerfile), every bundled operator
# (operators/*/Dockerfile) and PostgreSQL for high availability (images/postgresql/Dockerfile),
# with docker (when `docker info` works), else buildah, else podman; as root on Debian with none
# of them, it installs buildah with apt-get.
#
#   scripts/build-images.sh [--oci-dir DIR] [--only NAME]... [--base IMAGE|local] [--tag TAG]
#                           [--repo REPO] [--tool docker|podman|buildah] [--force] [--list]
#
#   --oci-dir DIR  also write each image as an OCI archive DIR/claractl-NAME.oci.tar (for
#                  ../shared/kube/load-image.sh, `ctr images import`, `podman load`)
#   --only NAME    build only this image (platform, ai-inference, dicom-reader, ...); repeatable
#   --base IMAGE   the Dockerfiles' BASE_IMAGE (default docker.io/library/python:3.11-slim-bookworm);
#                  `local`: a base made here from Debian 12 packages (mmdebstrap), also used when
#                  no registry answers. Environment: CLARA_IMAGE_BASE. The postgresql image's base
#                  is the official postgres:15-bookworm, or with a local base Debian 12's
#                  postgresql-15 package (CLARA_POSTGRES_BASE=IMAGE|local to choose).
#   --tag TAG      image tag (default claractl.__version__); --repo REPO: default docker.io/claractl
#   --force        rebuild even when an image's inputs are unchanged
#   --list         print NAME REFERENCE DOCKERFILE of each image and exit
#
# Images are REPO/NAME:TAG, e.g. docker.io/claractl/platform:0.1.0; an operator's NAME is its
# operator.yaml `container.image` without `claractl/`. An image whose inputs (Dockerfile, the
# context files it copies, base image, pip settings) hash to the digest recorded in its
# `dev.claractl.inputs` label (and beside its archive, in ARCHIVE.inputs) is not rebuilt.
# Prints each image's reference (or archive, with --oci-dir) on stdout; progress goes to stderr,
# each build's output to ${TMPDIR:-/tmp}/claractl-build-images/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'build-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,25s/^# \{0,1\}//p' "$0" >&2; exit "${1:-2}"; }

DEFAULT_BASE=docker.io/library/python:3.11-slim-bookworm
LABEL=dev.claractl.inputs
oci_dir='' only=() base=${CLARA_IMAGE_BASE:-} tag='' repo=docker.io/claractl tool=${CLARA_IMAGE_TOOL:-}
force=0 list=0
while [ $# -gt 0 ]; do
  case $1 in
    --oci-dir) oci_dir=${2:?--oci-dir needs a directory}; shift ;;
    --only) IFS=, read -ra names <<< "${2:?--only needs a name}"; only+=("${names[@]}"); shift ;;
    --base) base=${2:?--base needs an image or local}; shift ;;
    --tag) tag=${2:?--tag needs a tag}; shift ;;
    --repo) repo=${2:?--repo needs a repository prefix}; shift ;;
    --tool) tool=${2:?--tool needs docker, podman or buildah}; shift ;;
    --force) force=1 ;;
    --list) list=1 ;;
    -h|--help) usage 0 ;;
    *) log "unknown argument: $1"; usage ;;
  esac
  shift
done

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' claractl/__init__.py)
[ -n "$version" ] || die "no __version__ in claractl/__init__.py"
tag=${tag:-$version}

# -- the images: NAME and Dockerfile ------------------------------------------------------------
names=(platform) dockerfiles=(Dockerfile)
for f in operators/*/Dockerfile; do
  image=$(sed -n 's/^ *image: *"\{0,1\}claractl\/\([a-z0-9._-]*\)"\{0,1\} *$/\1/p' "$(dirname "$f")/operator.yaml")
  [ -n "$image" ] || die "$(dirname "$f")/operator.yaml: no container.image claractl/NAME"
  names+=("$image") dockerfiles+=("$f")
done
names+=(postgresql) dockerfiles+=(images/postgresql/Dockerfile)     # not Python: a base of its own
selected=()
for i in "${!names[@]}"; do
  if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" ${names[$i]} "* ]]; then selected+=("$i"); fi
done
for n in "${only[@]}"; do
  [[ " ${names[*]} " == *" $n "* ]] || die "--only $n: no such image (images: ${names[*]})"
done
if [ $list = 1 ]; then
  for i in "${selected[@]}"; do echo "${names[$i]} $repo/${names[$i]}:$tag ${dockerfiles[$i]}"; done
  exit 0
fi

# -- the build tool -------------------------------------------------------------------------------
apt_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "$@" >/dev/null
}
if [ -z "$tool" ]; then
  if command -v docker >/dev/null && timeout 20 docker info >/dev/null 2>&1; then tool=docker
  elif command -v buildah >/dev/null; then tool=buildah
  elif command -v podman >/dev/null; then tool=podman
  else
    log "no docker (with a running daemon), podman or buildah found: installing Debian's buildah"
    apt_install buildah runc uidmap ||
      die "no docker, podman or buildah: install one (as root on Debian this script installs buildah)"
    tool=buildah
  fi
fi
command -v "$tool" >/dev/null || die "--tool $tool: not found"
log "using $tool ($("$tool" --version 2>/dev/null | head -1))"

work=$(mktemp -d "${TMPDIR:-/tmp}/claractl-build-images.XXXXXX")
trap 'rm -rf "$work"' EXIT
logs=${TMPDIR:-/tmp}/claractl-build-images
mkdir -p "$logs"

build_flags=()
if [ "$tool" != docker ]; then
  # runc: crun (podman's default) fails on hybrid-cgroup hosts; host network: pip reaches PyPI.
  build_flags+=(--layers --isolation oci --network host --pull=never)
  command -v runc >/dev/null && build_flags+=(--runtime "$(command -v runc)")
  # podman/buildah ask for 1048576 open files by default, more than some hosts allow.
  hard=$(ulimit -Hn)
  if [ -z "${CONTAINERS_CONF:-}" ] && [ "$hard" != unlimited ] && [ "$hard" -lt 1048576 ]; then
    nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768   # higher fails here
    printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
      "$hard" "$hard" "$nproc" "$nproc" > "$work/containers.conf"
    export CONTAINERS_CONF=$work/containers.conf
  fi
fi

image_exists() {
  case $tool in
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    *) "$tool" image inspect "$1" >/dev/null 2>&1 ;;
  esac
}
image_label() {  # image_label REF KEY
  case $tool in
    buildah) buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$2\"}}" "$1" 2>/dev/null ;;
    *) "$tool" image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null ;;
  esac
}
image_id() {
  case $tool in
    buildah) buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null ;;
    *) "$tool" image inspect --format '{{.Id}}' "$1" 2>/dev/null ;;
  esac
}
image_size() {
  case $tool in
    buildah) buildah images --format '{{.Size}}' "$1" 2>/dev/null | head -1 ;;
    *) "$tool" image ls --format '{{.Size}}' "$1" 2>/dev/null | head -1 ;;
  esac
}

# -- the base image ---------------------------------------------------------------------------------
registry_reachable() {  # any HTTP answer (401 is the usual one) within 4 s: offline machines must not wait
  python3 -c 'import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen("https://registry-1.docker.io/v2/", timeout=4)
except urllib.error.HTTPError:
    pass
except OSError:
    sys.exit(1)' 2>/dev/null
}
# Debian 12's python3 (3.11.2) with venv support, CA certificates, useradd and the C++ runtime that
# manylinux wheels expect of the system (onnx, onnxruntime, grpcio); no apt, no docs.
LOCAL_BASE_PACKAGES=python3,python3-venv,ca-certificates,passwd,libstdc++6
MIRROR=${CLARA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CLARA_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# debian_image REF PACKAGES CMD BINDIR LOGNAME [MMDEBSTRAP-ARG]...: the image REF made from Debian 12
# with PACKAGES (mmdebstrap's essential variant: no apt, no docs), CMD as its command, BINDIR (if
# any) first on PATH; made once (REF names the recipe's digest).
debian_image() {
  local ref=$1 packages=$2 cmd=$3 bindir=$4 logname=$5; shift 5
  image_exists "$ref" && return
  command -v mmdebstrap >/dev/null || apt_install mmdebstrap ||
    die "a local base needs mmdebstrap (apt-get install mmdebstrap), or give a base image (--base IMAGE, CLARA_POSTGRES_BASE=IMAGE)"
  log "making the local base image $ref from Debian 12 packages (mmdebstrap, about a minute)"
  mmdebstrap --quiet --variant=essential --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='APT::Install-Recommends "false"' --include="$packages" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' "$@" \
    bookworm "$work/rootfs.tar" "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" \
    "deb $SECURITY_MIRROR bookworm-security main" > "$logs/$logname.log" 2>&1 ||
    { tail -20 "$logs/$logname.log" >&2; die "mmdebstrap failed (whole output: $logs/$logname.log)"; }
  local path=${bindir:+$bindir:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  case $tool in
    buildah)
      local c; c=$(buildah from scratch)
      buildah add --quiet "$c" "$work/rootfs.tar" / >/dev/null
      buildah config --env PATH=$path --env LANG=C.UTF-8 --cmd "$cmd" "$c"
      buildah commit --quiet --rm "$c" "$ref" >/dev/null ;;
    *) "$tool" import --change "ENV PATH=$path" --change "ENV LANG=C.UTF-8" --change "CMD [\"$cmd\"]" \
         "$work/rootfs.tar" "$ref" >/dev/null ;;
  esac
  rm -f "$work/rootfs.tar"
}
recipe_ref() {  # recipe_ref NAME RECIPE → localhost/NAME:bookworm-<digest of RECIPE>
  printf 'localhost/%s:bookworm-%s' "$1" "$(printf %s "$2" | sha256sum | cut -c1-12)"
}
make_local_base() {
  base=$(recipe_ref claractl-base "bookworm essential merged-usr $LOCAL_BASE_PACKAGES $MIRROR $SECURITY_MIRROR")
  debian_image "$base" "$LOCAL_BASE_PACKAGES" python3 "" base
}
# PostgreSQL from Debian 12's package, arranged like the official image: user postgres is 999,
# /var/lib/postgresql/data belongs to it, and no cluster is made (the chart's script runs initdb).
PG_DEFAULT_BASE=docker.io/library/postgres:15-bookworm
PG_LOCAL_PACKAGES=postgresql-15,passwd,ca-certificates
make_local_pg_base() {
  pg_base=$(recipe_ref claractl-postgresql-base \
    "bookworm essential merged-usr $PG_LOCAL_PACKAGES uid999 $MIRROR $SECURITY_MIRROR")
  debian_image "$pg_base" "$PG_LOCAL_PACKAGES" postgres /usr/lib/postgresql/15/bin postgresql-base \
    --customize-hook='chroot "$1" sh -c "groupmod -g 999 postgres && usermod -u 999 -g 999 postgres"' \
    --customize-hook='rm -rf "$1"/var/lib/postgresql/15 "$1"/etc/postgresql/15' \
    --customize-hook='mkdir -p "$1"/var/lib/postgresql/data "$1"/var/run/postgresql' \
    --customize-hook='chroot "$1" chown -R 999:999 /var/lib/postgresql /var/run/postgresql /var/log/postgresql'
}

base_args=()
case $base in
  local) make_local_base ;;
  '') if image_exists "$DEFAULT_BASE"; then base=$DEFAULT_BASE
      elif registry_reachable; then
        log "pulling $DEFAULT_BASE"; "$tool" pull -q "$DEFAULT_BASE" >/dev/null; base=$DEFAULT_BASE
      else
        log "registry-1.docker.io does not answer: using a local base (Debian 12's python3)"
        make_local_base
      fi ;;
  *) image_exists "$base" || { log "pulling $base"; "$tool" pull -q "$base" >/dev/null; } ;;
esac
[ "$base" = "$DEFAULT_BASE" ] || base_args=(--build-arg "BASE_IMAGE=$base")
base_id=$(image_id "$base") || die "base image $base: not found"
log "base image $base (${base_id:0:12})"

# The postgresql image's base (only when it is to be built): official, or local like the rest.
pg_base=${CLARA_POSTGRES_BASE:-} pg_base_args=() pg_base_id=
if [[ " ${selected[*]} " == *" $((${#names[@]} - 1)) "* ]]; then
  case $pg_base in
    local) make_local_pg_base ;;
    '') if [[ $base == localhost/claractl-base:* ]]; then make_local_pg_base    # no registry here
        elif image_exists "$PG_DEFAULT_BASE"; then pg_base=$PG_DEFAULT_BASE
        else log "pulling $PG_DEFAULT_BASE"; "$tool" pull -q "$PG_DEFAULT_BASE" >/dev/null; pg_base=$PG_DEFAULT_BASE
        fi ;;
    *) image_exists "$pg_base" || { log "pulling $pg_base"; "$tool" pull -q "$pg_base" >/dev/null; } ;;
  esac
  [ "$pg_base" = "$PG_DEFAULT_BASE" ] || pg_base_args=(--build-arg "BASE_IMAGE=$pg_base")
  pg_base_id=$(image_id "$pg_base") || die "base image $pg_base: not found"
  log "postgresql base image $pg_base (${pg_base_id:0:12})"
fi

# -- this machine's pip settings (local wheel folders, index, CA bundle, constraints) -----------------
pip_args=() pip_digest=none
pip=$(command -v .venv/bin/pip pip3 pip 2>/dev/null | head -1) || true
if [ -n "$pip" ]; then
  pip_list=$("$pip" config list 2>/dev/null || true)
  if [ -n "$pip_list" ]; then
    mounts=$(printf '%s\n' "$pip_list" | python3 scripts/image_inputs.py pip-config "$work/pip" /run/clara-pip)
    if [ "$tool" = docker ]; then
      log "note: docker build cannot mount this machine's pip settings; pip in the build uses its defaults"
    else
      while read -r m; do pip_args+=(-v "$m"); done <<< "$mounts"
      pip_args+=(--build-arg PIP_CONFIG_FILE=/run/clara-pip/pip.conf)
      pip_digest=$(cat "$work"/pip/* | sha256sum | cut -c1-64)
    fi
  fi
fi

# -- build (and save) each image ------------------------------------------------------------------
[ -z "$oci_dir" ] || mkdir -p "$oci_dir"
summary=()
started=$SECONDS
for i in "${selected[@]}"; do
  name=${names[$i]} dockerfile=${dockerfiles[$i]}
  ref=$repo/$name:$tag
  if [ "$name" = postgresql ]; then
    image_base=$pg_base image_base_id=$pg_base_id image_base_args=("${pg_base_args[@]}")
  else
    image_base=$base image_base_id=$base_id image_base_args=("${base_args[@]}")
  fi
  inputs=$(python3 scripts/image_inputs.py digest . "$dockerfile" "base=$image_base_id" "pip=$pip_digest" "ref=$ref")
  archive=${oci_dir:+$oci_dir/claractl-$name.oci.tar}
  t0=$SECONDS state=
  if [ $force = 0 ] && [ -n "$archive" ] && [ -f "$archive" ] &&
     [ "$(cat "$archive.inputs" 2>/dev/null)" = "$inputs" ]; then
    state="up to date"
  else
    if [ $force = 0 ] && [ "$(image_label "$ref" "$LABEL")" = "$inputs" ]; then
      state="up to date"
    else
      old_id=$(image_id "$ref" || true)
      log "$name: building $ref from $dockerfile (output: $logs/$name.log)"
      if ! "$tool" build "${build_flags[@]}" "${image_base_args[@]}" "${pip_args[@]}" \
          --label "$LABEL=$inputs" --label "dev.claractl.base=$image_base" \
          --label "org.opencontainers.image.version=$version" \
          --label "org.opencontainers.image.title=claractl $name" \
          -f "$dockerfile" -t "$ref" . > "$logs/$name.log" 2>&1; then
        tail -40 "$logs/$name.log" >&2
        die "$name: build failed (whole output: $logs/$name.log)"
      fi
      new_id=$(image_id "$ref")
      # the image this one replaces (its cached layers stay for the next build)
      [ -z "$old_id" ] || [ "$old_id" = "$new_id" ] || "$tool" rmi "$old_id" >/dev/null 2>&1 || true
      state="built in $((SECONDS - t0)) s"
    fi
    if [ -n "$archive" ]; then
      t0=$SECONDS
      rm -f "$archive" "$archive.inputs"
      case $tool in
        buildah) buildah push --quiet "$ref" "oci-archive:$archive.part:$ref" >/dev/null ;;
        podman) podman save --quiet --format oci-archive -o "$archive.part" "$ref" ;;
        docker) docker save -o "$archive.part" "$ref" ;;
      esac
      mv "$archive.part" "$archive"
      echo "$inputs" > "$archive.inputs"
      state="$state, saved in $((SECONDS - t0)) s"
    fi
  fi
  log "$name: $ref $state"
  summary+=("$(printf '%-40s %8s  %s' "$name" "$(image_size "$ref" || true)" "$state")")
  echo "${archive:-$ref}"
done
log "done in $((SECONDS - started)) s:"
printf '  %s\n' "${summary[@]}" >&2
