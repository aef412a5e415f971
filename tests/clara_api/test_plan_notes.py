"""`plan` on the local target says that a pipeline's TRTIS/Triton service is not started (its
connections point at the inference service), and refuses a service image it cannot run without
podman or docker."""

from __future__ import annotations

import textwrap

import pytest

from claractl.plan import PlanError
from claractl.plan.model import CREATE, Change
from claractl.plan.render.lines import change_lines
from claractl.project import load_project
from claractl.targets.local import LocalTarget

PIPELINE = textwrap.dedent("""\
    api-version: 0.4.0
    name: liver
    operators:
    - name: infer
      container: {{image: claractl/ai-inference, command: [python, -m, claractl_operators.ai_inference]}}
      services:
      - name: trtis
        container: {{image: nvcr.io/nvidia/tensorrtserver, tag: 19.08-py3, command: [trtserver]}}
        connections: {{http: [{{name: NVIDIA_CLARA_TRTISURI, port: 8000}}]}}
      {extra}
    """)
OTHER_SERVICE = """- name: cache
    container: {image: registry.example/cache, tag: "1"}
    connections: {http: [{name: CACHE_URI, port: 6379}]}"""


def project(tmp_path, extra: str = ""):
    (tmp_path / "liver.yaml").write_text(PIPELINE.format(extra=extra))
    (tmp_path / "clara.yaml").write_text("apiVersion: claractl/v1\nkind: Project\nname: p\n"
                                         "pipelines:\n  - {name: liver, file: liver.yaml}\n")
    return LocalTarget(load_project(tmp_path / "clara.yaml"))


def test_plan_says_a_trtis_service_maps_to_the_inference_service(tmp_path):
    target = project(tmp_path)
    change = Change("pipeline.liver", CREATE, None, {"definition": "…"})
    target.refine(change)
    assert change.reason == ("service 'trtis' (nvcr.io/nvidia/tensorrtserver:19.08-py3) is not started: its "
                             "connections point at the inference service")
    assert change.reason in change_lines(change)[0].text
    target.check()                        # a Triton service needs no container runtime


def test_plan_refuses_a_service_image_without_a_container_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))          # no podman, no docker
    target = project(tmp_path, OTHER_SERVICE)
    with pytest.raises(PlanError, match="service 'cache' of operator 'infer' uses container image "
                                        "'registry.example/cache:1', which the local target runs through podman or docker"):
        target.check()
