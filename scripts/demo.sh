#!/usr/bin/env bash
# The main job on the local target, end to end:
#   create the reference project → apply it (starts the local platform) → send a synthetic CT
#   study as PACS1 to the AE ORGANSEG → the pipeline segments it → the DICOM SEG arrives at the
#   destination `pacs` (a dcmtk storescp here) → report its Dice against the phantom's truth.
# Leaves the platform running (dashboard URL printed); `claractl -C $DEMO destroy` cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
DEMO=${CLARA_DEMO_DIR:-/tmp/claractl-demo}
export PATH="$REPO/.venv/bin:$PATH"   # scripts/setup.sh's venv: claractl, python
export TCP_NODELAY=1   # Debian's dcmtk stalls ~45 ms per instance without it

[ -d "$DEMO/.clara" ] && claractl -C "$DEMO" platform stop >/dev/null 2>&1 || true
pkill -f "storescp --aetitle PACS1 --output-directory $DEMO/pacs" 2>/dev/null || true
rm -rf "$DEMO"

echo "== 1. create the reference project (blueprint ct-segmentation) in $DEMO"
claractl init "$DEMO" --blueprint ct-segmentation
claractl -C "$DEMO" validate

echo "== 2. the PACS that receives results: dcmtk storescp as AE PACS1 on port 4242"
mkdir -p "$DEMO/pacs"
/usr/bin/storescp --aetitle PACS1 --output-directory "$DEMO/pacs" --filename-extension .dcm 4242 \
  >"$DEMO/pacs.log" 2>&1 &
PACS_PID=$!
trap 'kill $PACS_PID 2>/dev/null || true' EXIT

echo "== 3. plan and apply (starts the local platform in $DEMO/.clara)"
claractl -C "$DEMO" plan
claractl -C "$DEMO" apply --auto-approve

echo "== 4. a synthetic CT study with ground truth"
python tools/phantom.py --out "$DEMO/study" --seed 7 >/dev/null
echo "   $(ls "$DEMO/study/dicom" | wc -l) CT slices in $DEMO/study/dicom"

echo "== 5. send it as PACS1 to ORGANSEG@127.0.0.1:11112"
claractl dicom send "$DEMO/study/dicom" --to ORGANSEG@127.0.0.1:11112 --calling-ae PACS1

echo "== 6. wait for the job and for the SEG to arrive at the PACS"
for _ in $(seq 1 300); do
  seg=$(ls "$DEMO"/pacs/*.dcm 2>/dev/null | head -n1 || true)
  [ -n "$seg" ] && break
  sleep 1
done
job=$(claractl -C "$DEMO" jobs list -o json | python -c 'import json,sys; jobs=json.load(sys.stdin); print(jobs[0]["id"] if jobs else "")')
[ -n "$job" ] && COLUMNS=120 claractl -C "$DEMO" jobs describe "$job"
if [ -z "${seg:-}" ]; then
  echo "demo: no SEG arrived at the PACS within 300 s; see 'claractl -C $DEMO jobs list' and 'claractl -C $DEMO platform logs'" >&2
  exit 1
fi
echo "   SEG received by PACS1: $seg"

echo "== 7. Dice of the SEG against the phantom's truth"
python tools/seg_report.py "$seg" "$DEMO/study/dicom" "$DEMO/study/truth.nii.gz" | grep -v '^{'
echo "== done. Dashboard: http://127.0.0.1:8765/ui/   stop: claractl -C $DEMO destroy --auto-approve"
