"""Property: whatever is done to a valid project, its pipeline or its model config — keys deleted,
duplicated, retyped, re-indented; odd encodings; huge and deeply nested values — `claractl
validate` ends with exit 0 or 1, never a traceback, within a bound per file (a hang detector, not
a speed test), and prints every problem as FILE:LINE:COL: key: message (the key when the problem
is at one), the same problems `-o json` lists.

CI runs a modest number of examples; `CLARACTL_FUZZ_PROFILE=validate-fuzz-long` runs many more:

    CLARACTL_FUZZ_PROFILE=validate-fuzz-long python -m pytest tests/project/test_validate_fuzz.py
"""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from claractl.cli.main import app
from claractl.project.model import one_line

from .conftest import BASE_PIPELINE, MODEL_CONFIG, write_model_dir

settings.register_profile("validate-fuzz", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("validate-fuzz-long", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile(os.environ.get("CLARACTL_FUZZ_PROFILE", "validate-fuzz"))
HANG_SECONDS = 30          # per file; validate takes milliseconds: only a hang gets near this

# Every section and most keys, so mutations reach every check.
PROJECT = """\
apiVersion: claractl/v1
kind: Project
name: fuzz
description: "every section"
target:
  type: local
  local: {state-dir: .clara}
services:
  platform: {api-host: 127.0.0.1, api-port: 8765, workers: 2, database: sqlite, job-timeout: 600}
  dicom-adapter:
    enabled: true
    host: 0.0.0.0
    port: 11112
    ae-title: CLARA
    storage: {watermark-percent: 85, reserve-mb: 0}
  triton: {enabled: true, http-port: 8000, grpc-port: 8001}
  render: {enabled: true, port: 8080}
models:
  - name: m
    path: models/m
    lifecycle: {protect: true}
pipelines:
  - name: p
    file: pipelines/p.yaml
    export:
      - {agent: ClaraSCU, destinations: [pacs]}
ae-titles:
  - ae-title: TEST
    pipelines: [p]
    group-by: "0020,000E"
    timeout: 5
    priority: normal
sources:
  - {name: src, ae-title: SRC, host: 127.0.0.1}
destinations:
  - {name: pacs, ae-title: PACS, host: pacs.example, port: 4242}
"""

SCALARS = ["", "null", "~", "[]", "{}", "-1", "0", "1e309", "99999999999999999999999", ".nan", "true", "no",
           "x", "'${env:NOPE}'", "'${{ a }}'", "&a", "*a", "*nope", "!!binary aGk=", "!!python/object:os.system",
           "|", ">-", "'\\u0000'", '"\\t"', "2024-01-01", "0x1F", "'..'", "../../etc/passwd", "/etc",
           "é", "🙂", "{a: 1, a: 2}", "[1, [2, [3]]]", "<<: *a", "? complex\n: key", "'\\\\'",
           '"a\\0b"', '"\\x85"', '"\\u2028"', '"\\e[31m"', '"\\uD800"']
TEXT_FILES = ("clara.yaml", "pipelines/p.yaml", "models/m/config.pbtxt")

_index = st.integers(min_value=0, max_value=10_000)
_line_op = st.one_of(
    st.tuples(st.just("delete"), _index),
    st.tuples(st.just("duplicate"), _index),
    st.tuples(st.just("retype"), _index, st.one_of(st.sampled_from(SCALARS), st.text(max_size=30))),
    st.tuples(st.just("reindent"), _index, st.integers(-6, 6), st.booleans()),
    st.tuples(st.just("insert"), _index, st.text(max_size=60)),
    st.tuples(st.just("huge"), _index, st.sampled_from(["string", "list", "mapping", "keys"]),
              st.integers(1_000, 400_000)),
    st.tuples(st.just("nest"), _index, st.integers(2, 400), st.sampled_from(["[", "{a: ", "- "])),
)
_encoding = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "crlf", "nul", "bad-byte", "truncate",
                             "no-newline"])


def _huge(kind: str, n: int) -> str:
    if kind == "string":
        return "x" * n
    if kind == "list":
        return "[" + ", ".join(["1"] * (n // 3)) + "]"
    if kind == "mapping":
        return "{" + ", ".join(f"k{i}: {i}" for i in range(n // 8)) + "}"
    return "\n" + "\n".join(f"  k{i}: v" for i in range(n // 8))


def _nested(depth: int, opener: str) -> str:
    if opener == "- ":
        return "\n" + "".join("  " * i + "- \n" for i in range(depth)) + "  " * depth + "x"
    closer = "]" if opener == "[" else "}"
    return opener * depth + "x" + closer * depth


def mutate_lines(text: str, ops: list[tuple]) -> str:
    lines = text.split("\n")
    for op in ops:
        i = op[1] % len(lines) if lines else 0
        kind = op[0]
        if not lines:
            lines = [""]
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "retype":
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}: {op[2]}" if sep else f"{lines[i]} {op[2]}"
        elif kind == "reindent":
            body = lines[i].lstrip(" \t")
            indent = max(0, len(lines[i]) - len(body) + op[2])
            lines[i] = ("\t" if op[3] else " ") * indent + body
        elif kind == "insert":
            lines.insert(i, op[2])
        elif kind == "huge":
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}: {_huge(op[2], op[3])}" if sep else lines[i] + _huge(op[2], op[3])
        elif kind == "nest":
            key, sep, _ = lines[i].partition(":")
            lines[i] = f"{key}: {_nested(op[2], op[3])}" if sep else _nested(op[2], op[3])
    return "\n".join(lines)


def encode(text: str, how: str) -> bytes:
    if how == "utf-16":
        return text.encode("utf-16")
    if how == "latin-1":
        return text.replace("fuzz", "fuzzé").encode("latin-1", errors="replace")
    if how == "utf-8-sig":
        return text.encode("utf-8-sig")
    if how == "crlf":
        return text.replace("\n", "\r\n").encode()
    if how == "nul":
        return text.encode()[: len(text) // 2] + b"\x00" + text.encode()[len(text) // 2:]
    if how == "bad-byte":
        return text.encode()[: len(text) // 3] + b"\xff\xfe" + text.encode()[len(text) // 3:]
    if how == "truncate":
        return text.encode()[: len(text) // 2]
    if how == "no-newline":
        return text.rstrip("\n").encode()
    return text.encode()


class Hang(Exception):
    pass


@contextmanager
def hang_detector(seconds: float):
    def expired(signum, frame):
        raise Hang(f"validate did not finish within {seconds} s")

    # pytest-timeout may have its own alarm running: it is put back, less the time spent here.
    previous = signal.signal(signal.SIGALRM, expired)
    started = time.monotonic()
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            remaining = max(outer_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)


def write_project(root: Path, files: dict[str, bytes]) -> None:
    write_model_dir(root / "models" / "m")
    (root / "pipelines").mkdir()
    for name, data in files.items():
        (root / name).write_bytes(data)


SHAPE = re.compile(r"^.+?:[1-9][0-9]*:[1-9][0-9]*: \S.*$")


def run_validate(root: Path, *extra: str):
    with hang_detector(HANG_SECONDS * len(TEXT_FILES)):
        result = CliRunner().invoke(app, ["-C", str(root), "validate", *extra], env={"CI": "true"})
    assert not isinstance(result.exception, Hang), result.exception
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1), (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def check_validate(root: Path) -> None:
    text, as_json = run_validate(root), run_validate(root, "-o", "json")
    report = json.loads(as_json.stdout)
    assert text.exit_code == as_json.exit_code == (0 if report["valid"] else 1)
    lines = text.stdout.splitlines()
    if report["valid"]:
        assert len(lines) == 1 and "is valid" in lines[0] and not report["errors"]
        return
    assert report["errors"] and len(lines) == len(report["errors"]), (lines, report["errors"])
    for line, error in zip(lines, report["errors"]):
        assert SHAPE.match(line), line
        key = f"{error['key_path']}: " if error["key_path"] else ""
        assert line == one_line(f"{error['file']}:{error['line']}:{error['column']}: {key}{error['message']}"), line
        assert error["message"].strip(), line


@settings(PROFILE)
@given(target=st.sampled_from(TEXT_FILES), ops=st.lists(_line_op, min_size=1, max_size=4), how=_encoding)
def test_validate_of_a_mutated_project_ends_cleanly(target, ops, how):
    originals = {"clara.yaml": PROJECT, "pipelines/p.yaml": BASE_PIPELINE,
                 "models/m/config.pbtxt": MODEL_CONFIG.format(name="m")}
    files = {name: text.encode() for name, text in originals.items()}
    files[target] = encode(mutate_lines(originals[target], ops), how)
    with tempfile.TemporaryDirectory() as tmp:
        write_project(Path(tmp), files)
        check_validate(Path(tmp))


def test_the_unmutated_project_is_valid(tmp_path):
    """The fuzz starts from a valid project: the mutations, not the base, make errors."""
    originals = {"clara.yaml": PROJECT, "pipelines/p.yaml": BASE_PIPELINE,
                 "models/m/config.pbtxt": MODEL_CONFIG.format(name="m")}
    write_project(tmp_path, {name: text.encode() for name, text in originals.items()})
    assert run_validate(tmp_path).exit_code == 0
