"""Blueprints for `claractl init`: whole example projects under `blueprints/<name>/`.

Files ending in `.j2` are rendered with jinja2 (the suffix is dropped); every other file is
copied byte for byte (models are binary). `blueprint.yaml` describes the blueprint and is not
copied. Nothing is written until everything rendered, and existing files are only replaced
with `force`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from claractl import resources

DESCRIPTION_FILE = "blueprint.yaml"
DEFAULT_BLUEPRINT = "minimal"


class BlueprintError(Exception):
    """A blueprint cannot be rendered into the given directory (message says why)."""


@dataclass(frozen=True)
class Blueprint:
    name: str
    description: str
    path: Path


def list_blueprints(root: Path | None = None) -> list[Blueprint]:
    import yaml   # here, not at the top: `claractl --help` names DEFAULT_BLUEPRINT without loading YAML

    root = root or resources.BLUEPRINTS_DIR
    found = []
    for directory in sorted(p for p in root.iterdir() if p.is_dir()):
        meta_file = directory / DESCRIPTION_FILE
        meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
        found.append(Blueprint(directory.name, (meta or {}).get("description", ""), directory))
    return found


def get_blueprint(name: str, root: Path | None = None) -> Blueprint:
    blueprints = {b.name: b for b in list_blueprints(root)}
    if name not in blueprints:
        raise BlueprintError(f"no blueprint named '{name}'; available: {', '.join(sorted(blueprints))}")
    return blueprints[name]


def project_name_for(directory: Path) -> str:
    """A valid project name from a directory name ("My Project!" → "my-project")."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", directory.resolve().name).strip("-_.").lower()
    return name[:63].rstrip("-_.") or "clara-project"


def render_blueprint(name: str, destination: str | os.PathLike[str], *, force: bool = False,
                     project_name: str | None = None, root: Path | None = None) -> list[Path]:
    """Render blueprint `name` into `destination`; returns the files written (absolute)."""
    import jinja2

    blueprint = get_blueprint(name, root)
    destination = Path(destination).resolve()
    if destination.exists() and not destination.is_dir():
        raise BlueprintError(f"{destination} exists and is not a directory")
    context = {"name": project_name or project_name_for(destination),
               "schemas_dir": resources.SCHEMAS_DIR.as_uri(), "blueprint": blueprint.name}
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(blueprint.path)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    planned: list[tuple[Path, Path | None, str | None]] = []     # (target, copy-from, rendered text)
    for source in sorted(p for p in blueprint.path.rglob("*") if p.is_file()):
        relative = source.relative_to(blueprint.path)
        if relative == Path(DESCRIPTION_FILE) or "__pycache__" in relative.parts:
            continue
        if source.suffix == ".j2":
            text = env.get_template(relative.as_posix()).render(**context)
            planned.append((destination / relative.with_suffix(""), None, text))
        else:
            planned.append((destination / relative, source, None))
    existing = [target for target, _, _ in planned if target.exists()]
    if existing and not force:
        shown = ", ".join(str(p.relative_to(destination)) for p in existing[:5])
        more = f" and {len(existing) - 5} more" if len(existing) > 5 else ""
        raise BlueprintError(f"{destination} already has {shown}{more}; use --force to overwrite")
    for target, copy_from, text in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(target, copy_from, text)
    return [target for target, _, _ in planned]


def _write_atomically(target: Path, copy_from: Path | None, text: str | None) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            if copy_from is not None:
                with copy_from.open("rb") as src:
                    shutil.copyfileobj(src, out)
            else:
                out.write(text.encode("utf-8"))
        if copy_from is not None:
            shutil.copymode(copy_from, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
