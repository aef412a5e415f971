"""Render and lint Helm charts with real Helm: the `helm` binary when on PATH, else Helm's Go SDK
through the `helm-python-sdk` package (libhelm_c, no binary needed).

Both paths run the same Helm engine, so templates, `values.schema.json` checks and lint rules
are Helm's own. Rendering is offline: no cluster is contacted (`lookup` returns nothing).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("claractl.helm")


class HelmError(Exception):
    """A chart failed to load, its values broke its schema, or a template failed; one message."""


@dataclass(frozen=True)
class LintMessage:
    severity: str      # info | warning | error
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


def backend() -> str:
    """Which Helm runs: "binary" (helm on PATH; CLARA_HELM=sdk forces the SDK) or "sdk"."""
    forced = os.environ.get("CLARA_HELM", "")
    if forced in ("binary", "sdk"):
        return forced
    return "binary" if shutil.which("helm") else "sdk"


def render_chart(chart_dir: str | os.PathLike[str], release: str, namespace: str,
                 values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Render a chart like `helm template` and return its objects, in template order."""
    chart_dir = Path(chart_dir)
    if not (chart_dir / "Chart.yaml").is_file():
        raise HelmError(f"{chart_dir}: not a Helm chart (no Chart.yaml)")
    documents = (_render_binary if backend() == "binary" else _render_sdk)(chart_dir, release, namespace, values or {})
    objects: list[dict[str, Any]] = []
    for source, text in documents:
        try:
            for doc in yaml.safe_load_all(text):
                if doc:
                    objects.append(doc)
        except yaml.YAMLError as exc:
            raise HelmError(f"{source}: rendered template is not valid YAML: {exc}") from None
    return objects


def lint_chart(chart_dir: str | os.PathLike[str], values: dict[str, Any] | None = None,
               kube_version: str | None = None) -> list[LintMessage]:
    """`helm lint --strict` findings (info, warning, error) for the chart with these values."""
    if backend() == "binary":
        return _lint_binary(Path(chart_dir), values or {}, kube_version)
    helm = _sdk()
    report = helm.lint(os.fspath(chart_dir), values or {}, strict=True, with_subcharts=True,
                       kube_version=kube_version)
    names = {1: "info", 2: "warning", 3: "error"}
    return [LintMessage(names.get(m["severity"], "unknown"), m["path"], m["error"].strip())
            for m in report["messages"]]


# ---- the SDK path -------------------------------------------------------------------------

_sdk_module = None


def _sdk():
    global _sdk_module
    if _sdk_module is None:
        try:
            import helm_python
        except ImportError:
            raise HelmError("Helm is needed to render charts: install the `helm` binary or "
                            "`pip install 'claractl[helm]'` (helm-python-sdk)") from None
        # Route the Go library's log lines into Python logging instead of raw stderr.
        helm_python.enable_logging(logging.WARNING, log)
        _sdk_module = helm_python
    return _sdk_module


def _render_sdk(chart_dir: Path, release: str, namespace: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    helm = _sdk()
    try:
        with helm.Chart.load(chart_dir) as chart:
            rendered = chart.render(values=values, name=release, namespace=namespace, is_install=True)
    except helm.HelmError as exc:
        raise HelmError(f"{chart_dir.name}: {_one_line(str(exc))}") from None
    # Template order = sorted paths, like `helm template`; NOTES.txt is not a manifest.
    return [(path, text) for path, text in sorted(rendered.items())
            if not path.endswith("NOTES.txt") and text.strip()]


# ---- the binary path ----------------------------------------------------------------------

def _values_file(values: dict[str, Any]) -> str:
    fd, path = tempfile.mkstemp(prefix="clara-values-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh)      # JSON is YAML; values may hold a secret, so the file is 0600
    return path


def _run_helm(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["helm", *args], capture_output=True, text=True, timeout=120)


def _render_binary(chart_dir: Path, release: str, namespace: str, values: dict[str, Any]) -> list[tuple[str, str]]:
    path = _values_file(values)
    try:
        proc = _run_helm(["template", release, str(chart_dir), "--namespace", namespace, "--values", path])
    finally:
        os.unlink(path)
    if proc.returncode != 0:
        raise HelmError(f"{chart_dir.name}: {_one_line(proc.stderr)}")
    return [(f"{chart_dir.name} (helm template)", proc.stdout)]


def _lint_binary(chart_dir: Path, values: dict[str, Any], kube_version: str | None) -> list[LintMessage]:
    path = _values_file(values)
    try:
        args = ["lint", str(chart_dir), "--strict", "--with-subcharts", "--values", path]
        if kube_version:
            args += ["--kube-version", kube_version]
        proc = _run_helm(args)
    finally:
        os.unlink(path)
    messages = []
    for line in (proc.stdout + proc.stderr).splitlines():
        line = line.strip()
        for tag, severity in (("[INFO]", "info"), ("[WARNING]", "warning"), ("[ERROR]", "error")):
            if line.startswith(tag):
                where, _, text = line[len(tag):].strip().partition(": ")
                messages.append(LintMessage(severity, where, text))
    if proc.returncode != 0 and not any(m.severity == "error" for m in messages):
        messages.append(LintMessage("error", str(chart_dir), _one_line(proc.stderr or proc.stdout)))
    return messages


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.strip().splitlines() if part.strip())
