"""Test operator 3: reads both named outputs of `split` and the output of `upper` (via the
environment mapping, not argv), writes result.txt and the Clara environment it saw."""
import json
import os
import sys
from pathlib import Path

out = Path(sys.argv[1])
inputs = json.loads(os.environ["NVIDIA_CLARA_INPUT_PATHS"])
left, right, upper = Path(inputs["/left"]), Path(inputs["/right"]), Path(inputs["/upper"])
parts = []
for f in sorted(left.glob("*.txt")):
    parts.append(f"{f.name}: left={f.read_text().split()} right={(right / f.name).read_text().split()} "
                 f"upper={(upper / f.name).read_text().split()}")
(out / "result.txt").write_text("\n".join(parts) + "\n")
env = {k: v for k, v in os.environ.items() if k.startswith(("NVIDIA_", "CLARA_API_URL", "GREETING"))}
(out / "env.json").write_text(json.dumps(env, indent=1, sort_keys=True))
print("merge done")
