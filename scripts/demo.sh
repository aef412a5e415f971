#!/usr/bin/env bash
# The main job on the local target: create the reference project, validate it, and (as the
# platform pieces land) apply it, send a CT study, and fetch the segmentation back.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${CLARA_DEMO_DIR:-/tmp/claractl-demo}
rm -rf "$DEMO"
claractl init "$DEMO" --blueprint ct-segmentation
claractl -C "$DEMO" validate
