"""Test operator: ask the inference service (through tritonclient, at the URI the platform gave)
whether each model named on the command line is ready; write the answers."""
import json
import os
import sys
from pathlib import Path

import tritonclient.http as httpclient

out = Path(sys.argv[1])
client = httpclient.InferenceServerClient(os.environ["NVIDIA_TRITON_HTTPURI"])
answers = {name: client.is_model_ready(name) for name in sys.argv[2:]}
legacy = os.environ.get("NVIDIA_CLARA_TRTISURI"), os.environ.get("MY_TRTIS")
(out / "ready.json").write_text(json.dumps({"ready": answers, "legacy": legacy}))
