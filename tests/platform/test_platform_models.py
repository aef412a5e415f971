"""Models through the real embedded inference service: PUT loads the model; an operator with
`models` finds them loaded when it starts; legacy `services` connections point at the service."""

from __future__ import annotations

import json
from pathlib import Path

from platform_helpers import RunningPlatform, free_port, identity_model, make_config, op, pdl


def test_models_are_loaded_before_an_operator_that_declares_them(tmp_path):
    config = make_config(tmp_path / "state")
    config.inference.enabled = True
    config.inference.http_port, config.inference.grpc_port = free_port(), free_port()
    p = RunningPlatform(config)
    try:
        c = p.client
        model = c.put_model("ident", identity_model(tmp_path / "src", "ident"))
        assert (model["state"], model["message"]) == ("LOADED", None)
        assert c.unload_model("ident")["state"] == "UNLOADED"

        text = pdl("uses-model", [op("check", "model_ready.py", ["/out", "ident"], inputs=[{"path": "/input"}],
                                     outputs=[{"path": "/out"}], models=[{"name": "ident"}])]).replace(
            "api-version: 0.4.0", "api-version: 0.6.0")
        c.put_pipeline("uses-model", text)
        job = c.create_job("uses-model")
        c.start_job(job["id"])
        job = c.wait_for_job(job["id"], 60)
        assert job["status"] == "HEALTHY", job["message"]
        answer = json.loads((config.payloads_dir / job["payload_id"] / "operators/check/ready.json").read_text())
        assert answer["ready"] == {"ident": True}
        assert c.get_model("ident")["state"] == "LOADED"

        legacy = pdl("legacy", [op("check", "model_ready.py", ["/out"], inputs=[{"path": "/input"}],
                                   outputs=[{"path": "/out"}],
                                   services=[{"name": "trtis", "container": {"image": "nvcr.io/nvidia/tensorrtserver"},
                                              "connections": {"http": [{"name": "MY_TRTIS", "port": 8000}]}}])])
        c.put_pipeline("legacy", legacy)
        job = c.create_job("legacy")
        c.start_job(job["id"])
        job = c.wait_for_job(job["id"], 60)
        assert job["status"] == "HEALTHY", job["message"]
        answer = json.loads((config.payloads_dir / job["payload_id"] / "operators/check/ready.json").read_text())
        uri = f"127.0.0.1:{config.inference.http_port}"
        assert answer["legacy"] == [uri, uri]

        missing = pdl("missing", [op("check", "model_ready.py", ["/out"], inputs=[{"path": "/input"}],
                                     outputs=[{"path": "/out"}], models=[{"name": "nope"}])]).replace(
            "api-version: 0.4.0", "api-version: 0.6.0")
        c.put_pipeline("missing", missing)
        job = c.create_job("missing")
        c.start_job(job["id"])
        job = c.wait_for_job(job["id"], 60)
        assert job["status"] == "FAULTED" and "model 'nope'" in job["message"] and "'check'" in job["message"]
    finally:
        p.stop()
