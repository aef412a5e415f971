"""Every bundled operator has its entry point, a schema-valid operator.yaml, a Dockerfile, a README."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from operator_helpers import REPO, run_operator

OPERATORS = ["dicom_reader", "ai_inference", "dicom_seg_writer", "register_results",
             "register_volume_images_for_rendering"]
SCHEMA = json.loads((REPO / "schemas/operator.schema.json").read_text())


@pytest.mark.parametrize("module", OPERATORS)
def test_operator_is_complete(module):
    d = REPO / "operators" / module
    entry = yaml.safe_load((d / "operator.yaml").read_text())
    jsonschema.validate(entry, SCHEMA)
    kebab = module.replace("_", "-")
    assert entry["name"] == kebab
    assert entry["container"]["image"] == f"claractl/{kebab}" and entry["container"]["tag"] == "0.1.0"
    assert entry["container"]["command"][:3] == ["python", "-m", f"claractl_operators.{module}"]
    dockerfile = (d / "Dockerfile").read_text()
    assert f"claractl_operators.{module}" in dockerfile and "COPY operators" in dockerfile
    assert (d / "README.md").read_text().startswith(f"# {kebab}")
    # every PDL path the command uses is declared as an input or output
    declared = {p["path"] for p in entry.get("input", []) + entry.get("output", [])}
    used = {a for a in entry["container"]["command"] if isinstance(a, str) and a.startswith("/")}
    assert used <= declared


@pytest.mark.parametrize("module", OPERATORS)
def test_entry_point_help(module):
    proc = run_operator(module, "--help")
    assert "--input" in proc.stdout or "--dicom" in proc.stdout
