"""Help reads like a well-kept CLI (issue 13): every value named (FILE, DIR, [text|json]), never
typer's `<str>`/`<bool>` type labels; examples in plan, apply and init; shell completion works."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from claractl.cli.main import app

# typer's labels: Python type names, `<int range>`, `<list[str]>`, choices as `<a|b>`.
TYPE_LABEL = re.compile(r"<(str|bool|int|float|path|Path|datetime|list\[[^\]]*\]|\w+ range|[\w-]+(\|[\w-]+)+)>")


def command_paths(command, path=()):
    yield path
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from command_paths(sub, path + (name,))


ALL_COMMANDS = list(command_paths(typer.main.get_command(app)))


def help_of(*path: str) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "claractl")
def test_help_names_every_value_and_fits_80_columns(path):
    text = help_of(*path)
    assert not TYPE_LABEL.search(text), f"claractl {' '.join(path)} --help: give the value a metavar\n{text}"
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_values_are_named_for_what_they_are():
    assert "-f, --file FILE" in help_of("plan")
    assert "--lock-timeout DURATION" in help_of("apply")
    assert "--timeout SECONDS" in help_of("platform", "start")
    assert "-C, --directory DIR" in help_of()
    assert "-o, --output [text|json|markdown]" in help_of("plan")
    assert "PLAN_FILE" in help_of("apply")


@pytest.mark.parametrize("command", ["plan", "apply", "init"])
def test_examples_in_help(command):
    text = help_of(command)
    examples = text.split("Examples:")[1].split("\n\n")[0].splitlines()
    assert len([line for line in examples if line.strip().startswith("claractl ")]) >= 3, text


@pytest.mark.parametrize("path", [p for p in ALL_COMMANDS if len(p) < 2], ids=lambda p: " ".join(p) or "claractl")
def test_command_lists_show_whole_summaries(path):
    text = help_of(*path)
    if "Commands:" in text:
        assert "..." not in text.split("Commands:")[1], text


def test_a_long_summary_is_wrapped_not_cut():
    text = help_of()
    assert "Check the project file and every pipeline file it names; print\n" in text
    assert "every problem." in text


def test_shell_completion_script_and_answers():
    claractl = [str(Path(sys.executable).parent / "claractl")]      # the installed command, as a shell runs it
    script = subprocess.run(claractl + ["--show-completion", "bash"], capture_output=True, text=True, check=True)
    assert "complete -o default -F _claractl_completion claractl" in script.stdout
    # What bash asks the script for: `claractl pl<TAB>` and `claractl plan -o <TAB>`.
    env = {**os.environ, "_CLARACTL_COMPLETE": "complete_bash"}
    words = subprocess.run(claractl, capture_output=True, text=True, check=True,
                           env={**env, "COMP_WORDS": "claractl pl", "COMP_CWORD": "1"}).stdout.split()
    assert words == ["plan", "platform"]
    words = subprocess.run(claractl, capture_output=True, text=True, check=True,
                           env={**env, "COMP_WORDS": "claractl plan -o ", "COMP_CWORD": "3"}).stdout.split()
    assert words == ["text", "json", "markdown"]
