#!/usr/bin/env bash
# The main job on the local target: create the reference project, validate it, and (as the
# platform pieces land) apply it, send a CT study, and fetch the segmentation back.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${CLARA_DEMO_DIR:-/tmp/claractl-demo}
rm -rf "$DEMO"

echo "== 1. create the reference project (blueprint ct-segmentation) in $DEMO"
claractl init "$DEMO" --blueprint ct-segmentation

echo "== 2. validate it (project file, pipeline file, model directory)"
claractl -C "$DEMO" validate

# == 3. plan / apply / send a study / fetch results — added as those commands land:
#   claractl -C "$DEMO" plan
#   claractl -C "$DEMO" apply
#   storescu … to AE ORGANSEG, then wait for the job and fetch the DICOM SEG
echo "== demo: done (plan/apply steps follow as they land)"
