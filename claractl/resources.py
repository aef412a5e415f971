"""Where the repository's data folders are (schemas, blueprints, charts, operators).

claractl is installed editable from its checkout, so the data folders sit next to the package.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMAS_DIR = REPO_ROOT / "schemas"
BLUEPRINTS_DIR = REPO_ROOT / "blueprints"
CHARTS_DIR = REPO_ROOT / "charts"
OPERATORS_DIR = REPO_ROOT / "operators"


def schema_path(kind: str) -> Path:
    """`schemas/<kind>.schema.json` for kind in project | pipeline | operator."""
    return SCHEMAS_DIR / f"{kind}.schema.json"
