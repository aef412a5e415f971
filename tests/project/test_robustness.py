"""Randomly mangled projects and pipelines give ProjectError diagnostics, never another exception."""

from __future__ import annotations

import random

import pytest

from claractl.project import ProjectError, load_project

from .conftest import BASE_PIPELINE, BASE_PROJECT

TOKENS = ["", "null", "[]", "{}", "-1", "0", "x", "'${env:X}'", "'${{ a }}'", "[1, {a: b}]", ":", "&a", "*a",
          "{name: p}", "- z", "\t", '"\\\\"', "99999999999999999999", ".nan", "true"]
WORDS = ["name", "path", "from", "p", "m", "reader", "input", "output", "ae-title"]


def mangle(text: str, rnd: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rnd.randint(1, 3)):
        j = rnd.randrange(len(lines))
        op = rnd.random()
        if op < 0.4 and ":" in lines[j]:
            lines[j] = lines[j][: lines[j].index(":") + 1] + " " + rnd.choice(TOKENS)
        elif op < 0.6:
            lines[j] = lines[j].replace(rnd.choice(WORDS), rnd.choice(["nme", "x", "READER", "infer", ""]), 1)
        elif op < 0.8:
            lines.insert(j, lines[j])
        else:
            del lines[j]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(2))
def test_mangled_input_never_raises_anything_but_project_error(seed: int, make_project) -> None:
    rnd = random.Random(seed)
    rejected = 0
    for _ in range(100):
        in_project = rnd.random() < 0.5
        project = mangle(BASE_PROJECT, rnd) if in_project else BASE_PROJECT
        pipeline = BASE_PIPELINE if in_project else mangle(BASE_PIPELINE, rnd)
        path = make_project(project, pipeline)
        try:
            load_project(path)
        except ProjectError as exc:
            rejected += 1
            assert exc.diagnostics and all(d.location.line >= 1 and d.message for d in exc.diagnostics)
    assert rejected > 30          # the mangling really produces invalid input
