"""Where each field of a protobuf text file sits, so config errors can name file:line:col.

Python's text_format has no parse-info tree, so this walks the tokens itself and records every
field under a path like `input[0].dims[2]` (every component is indexed, also non-repeated ones).
"""

from __future__ import annotations

import re
from collections import defaultdict

_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)|(?P<string>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
    r"""|(?P<word>[A-Za-z0-9_.+\-]+)|(?P<punct>[{}\[\]:,;<>])|(?P<other>.)"""
)
_CLOSER = {"{": "}", "<": ">"}


def _tokens(text: str) -> list[tuple[str, str, int, int]]:
    out, line, line_start = [], 1, 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            out.append((kind, m.group(), line, m.start() - line_start + 1))
        newlines = m.group().count("\n")
        if newlines:
            line += newlines
            line_start = m.start() + m.group().rfind("\n") + 1
    return out


class FieldLocations:
    def __init__(self, text: str) -> None:
        self._toks = _tokens(text)
        self._pos = 0
        self.locations: dict[str, tuple[int, int]] = {}
        try:
            self._message("", None)
        except IndexError:        # truncated text: text_format reports that itself
            pass

    def find(self, path: str) -> tuple[int, int]:
        """(line, col) of `path`, or of its nearest recorded parent; (1, 1) when none is."""
        parts = [p if "[" in p else p + "[0]" for p in path.split(".")]
        while parts:
            candidate = ".".join(parts)
            if candidate in self.locations:
                return self.locations[candidate]
            if not parts[-1].endswith("[0]") and "[" in parts[-1]:
                parts[-1] = parts[-1].split("[")[0] + "[0]"   # nth item not there: point at the field
                continue
            parts.pop()
        return (1, 1)

    # --- recursive walk -------------------------------------------------------------------
    def _peek(self) -> str:
        return self._toks[self._pos][1] if self._pos < len(self._toks) else ""

    def _record(self, counters: dict[str, int], prefix: str, name: str, line: int, col: int) -> str:
        path = f"{prefix}{name}[{counters[name]}]"
        counters[name] += 1
        self.locations.setdefault(path, (line, col))
        return path

    def _nested(self, path: str) -> None:
        closer = _CLOSER[self._peek()]
        self._pos += 1
        self._message(path + ".", closer)
        self._pos += 1

    def _message(self, prefix: str, closer: str | None) -> None:
        counters: dict[str, int] = defaultdict(int)
        while self._pos < len(self._toks) and self._peek() != closer:
            kind, name, line, col = self._toks[self._pos]
            self._pos += 1
            if kind != "word":
                continue
            if self._peek() == ":":
                self._pos += 1
            if self._peek() == "[":
                self._pos += 1
                while self._pos < len(self._toks) and self._peek() != "]":
                    if self._peek() == ",":
                        self._pos += 1
                        continue
                    _, _, eline, ecol = self._toks[self._pos]
                    path = self._record(counters, prefix, name, eline, ecol)
                    if self._peek() in _CLOSER:
                        self._nested(path)
                    else:
                        self._pos += 1
                self._pos += 1
            elif self._peek() in _CLOSER:
                self._nested(self._record(counters, prefix, name, line, col))
            else:
                self._record(counters, prefix, name, line, col)
                self._pos += 1
                while self._pos < len(self._toks) and self._toks[self._pos][0] == "string":
                    self._pos += 1          # "adjacent" "strings" concatenate
            if self._peek() in (",", ";"):
                self._pos += 1
