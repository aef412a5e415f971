"""Help that names values the way well-kept CLIs do: `--file FILE`, `[PLAN_FILE]`, `--output [text|json]`,
and lists each command with its whole first sentence.

typer labels every value with its Python type (`<str>`, `<list[str]>`, `<int range>`). The root
group (`HelpNamedGroup`, see main.py) goes once over the command tree typer built — every command
module, including ones added later — and names each value that has no metavar of its own:
choices as `[a|b]`, arguments by their name (`PLAN_FILE`), options by their long name (`--state-dir
STATE_DIR`, as argparse does). Give `metavar=` where a better word exists (DIR, FILE, SECONDS, URL).
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator

from typer.core import TyperArgument, TyperGroup, TyperOption


def _commands(command: Any) -> Iterator[Any]:
    yield command
    for sub in (getattr(command, "commands", None) or {}).values():     # a group's subcommands
        yield from _commands(sub)


def _choices(param: Any) -> str | None:
    # typer >= 0.26 describes types itself; before, the parameter had a click type (click.Choice).
    described = getattr(param, "type_descriptor", None)
    choices = described.choices if described is not None else getattr(param.type, "choices", None)
    return "[" + "|".join(str(getattr(c, "value", c)) for c in choices) + "]" if choices else None


def name_values(param: Any) -> None:
    if isinstance(param, TyperArgument):
        if param.metavar is None:
            param.metavar = param.name.upper()
        label = _choices(param)
        # An argument's help line is "NAME <type>"; the type label is typer's, with no switch to
        # turn it off, so this parameter's is replaced (choices stay visible).
        param.display_type_rich = lambda ctx: label
    elif isinstance(param, TyperOption) and param.metavar is None and not (param.is_flag or param.count):
        longest = max(param.opts, key=len)
        param.metavar = _choices(param) or longest.lstrip("-").replace("-", "_").upper()


def summarise(command: Any) -> None:
    """The command list shows each command's whole first paragraph, wrapped: click would cut it
    at ~45 characters with "..." on an 80-column terminal or in a CI log."""
    if not command.short_help and command.help:
        command.short_help = " ".join(inspect.cleandoc(command.help).split("\n\n")[0].split())


class HelpNamedGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in _commands(self):
            summarise(command)
            for param in command.params:
                name_values(param)
