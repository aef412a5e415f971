#!/usr/bin/env bash
# The Kubernetes cluster the tests run against, ready to use: prints `export VAR=…` lines for
# `eval "$(scripts/test-cluster.sh)"` (progress on stderr).
#
#   CLARA_TEST_KUBECONFIG set      use that cluster (kind, k3s, minikube…); load the images into it yourself
#   else ../shared/kube/up.sh      the single-node cluster of this workplace, started here (seconds)
#
# Then, on the shared cluster: a tiny busybox image for test pods, and claractl's own images
# (scripts/build-images.sh --oci-dir, cached: an unchanged checkout rebuilds nothing).
# CLARA_TEST_SKIP_IMAGES=1 leaves the claractl images out (quick runs of the API-level tests).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KUBE=${CLARA_SHARED_KUBE:-$ROOT/../shared/kube}
IMAGE_DIR=${CLARA_TEST_IMAGE_DIR:-$ROOT/.cache/images}
say() { echo "test-cluster: $*" >&2; }

if [ -n "${CLARA_TEST_KUBECONFIG:-}" ]; then
  say "using the cluster of CLARA_TEST_KUBECONFIG=$CLARA_TEST_KUBECONFIG"
  echo "export CLARA_TEST_KUBECONFIG=$CLARA_TEST_KUBECONFIG"
  exit 0
fi
[ -x "$KUBE/up.sh" ] || { say "no $KUBE/up.sh and no CLARA_TEST_KUBECONFIG: the kubernetes tests will say they did not run"; exit 0; }

state=${CLARA_KUBE_DIR:-${TMPDIR:-/tmp}/claractl-kube}
already_up=0
[ -f "$state/kubeconfig" ] && [ -x "$state/bin/kubectl" ] && \
  "$state/bin/kubectl" --kubeconfig "$state/kubeconfig" --request-timeout=3s get --raw /readyz >/dev/null 2>&1 && already_up=1
kube_env=$("$KUBE/up.sh") || { say "$KUBE/up.sh failed"; exit 1; }
eval "$kube_env"                                   # KUBECONFIG of the shared cluster
if [ "$already_up" = 0 ]; then                     # the caller stops what it started
  echo "export CLARA_TEST_CLUSTER_STARTED=1 CLARA_TEST_CLUSTER_DOWN=$KUBE/down.sh"
fi

# busybox for test Jobs and pods (Debian's static build, one layer).
busybox=$IMAGE_DIR/test-busybox.oci.tar
if [ ! -f "$busybox" ]; then
  say "building the test busybox image"
  work=$(mktemp -d)
  (cd "$work" && apt-get download -qq busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq busybox-static; }) >&2
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/root"
  mkdir -p "$IMAGE_DIR"
  links=()
  for tool in sh true false sleep cat echo ls mkdir cp wget nc id env httpd; do links+=(--symlink "/bin/$tool=busybox"); done
  python3 "$KUBE/lib/mkimage.py" "$busybox.tmp" localhost/claractl-test/busybox:1 \
    "$work/root/bin/busybox:/bin/busybox" "${links[@]}" --dir /tmp --cmd '["sh"]' >&2
  mv "$busybox.tmp" "$busybox"
  rm -rf "$work"
fi
images=("$busybox")

if [ "${CLARA_TEST_SKIP_IMAGES:-0}" != 1 ]; then
  say "building claractl's images into $IMAGE_DIR (cached)"
  scripts/build-images.sh --oci-dir "$IMAGE_DIR" >&2
  images+=("$IMAGE_DIR"/claractl-*.oci.tar)
fi

# Load only what containerd does not hold yet with the same digest (load-image.sh is idempotent, but slow for big images).
for archive in "${images[@]}"; do
  stamp="$state/loaded-$(basename "$archive").sha256"
  digest=$(sha256sum "$archive" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    "$KUBE/load-image.sh" "$archive" >&2
    echo "$digest" >"$stamp"
  fi
done
echo "export CLARA_TEST_KUBECONFIG=$KUBECONFIG"
echo "export CLARA_TEST_IMAGE_DIR=$IMAGE_DIR"
