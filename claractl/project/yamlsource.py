"""Read one YAML document safely, keeping the line and column of every key and value.

Hostile input is expected (files come from anywhere): the size is checked before parsing,
binary data and empty files get their own errors, duplicate keys are errors, and alias
expansion is bounded so a "billion laughs" document fails fast with bounded memory.
Every problem is raised as a `ProjectError` pointing at file:line:column.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from claractl.project.model import Diagnostic, Location, ProjectError

MAX_FILE_BYTES = 10 * 1024 * 1024     # larger files are refused before parsing
MAX_NODES = 100_000                   # values repeated by alias expansion; real files have a few
MAX_DEPTH = 64                        # nesting; real files nest < 10 levels

KeyPath = tuple[Any, ...]             # ("operators", 2, "input", 0, "from")

_PLAIN_TAGS = {
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float", "tag:yaml.org,2002:str",
}
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 resolution without timestamps: `2024-01-01` stays a string (JSON has no dates)."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}


class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer,
              yaml.constructor.SafeConstructor, _Resolver):
    """Composes a node tree only; values are built by `_Builder`, which knows positions."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


try:
    from yaml.cyaml import CParser as _CParser          # libyaml: ~20x faster scanning
except ImportError:                                     # PyYAML built without libyaml
    _CParser = None


class _FastLoader(*([_CParser] if _CParser else []), yaml.constructor.SafeConstructor, _Resolver):  # type: ignore[misc]
    """libyaml's parser (fast) for events; nodes are composed by `_compose`, without recursion."""

    def __init__(self, text: str) -> None:
        _CParser.__init__(self, text)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)


def _compose(loader: Any, source: str) -> Node | None:
    """Build the node tree of the single document from parser events with an explicit stack,
    so deep nesting is a clear error instead of a crash, and anchors resolve like PyYAML's."""
    from yaml import events as ev

    anchors: dict[str, Node] = {}
    stack: list[tuple[Node, list]] = []           # open collections and their pending key
    root: Node | None = None
    documents = 0

    def attach(node: Node) -> None:
        nonlocal root
        if not stack:
            root = node
            return
        parent, pending = stack[-1]
        if isinstance(parent, SequenceNode):
            parent.value.append(node)
        elif pending:
            parent.value.append((pending.pop(), node))
        else:
            pending.append(node)

    while True:
        event = loader.get_event()
        if isinstance(event, ev.StreamEndEvent):
            return root
        if isinstance(event, ev.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _fail(source, event.start_mark.line + 1, event.start_mark.column + 1,
                            "YAML syntax error: expected one YAML document, found more than one ('---')")
        elif isinstance(event, ev.AliasEvent):
            if event.anchor not in anchors:
                raise _fail(source, event.start_mark.line + 1, event.start_mark.column + 1,
                            f"YAML syntax error: found undefined alias '{event.anchor}'")
            attach(anchors[event.anchor])
        elif isinstance(event, ev.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(ScalarNode, event.value, event.implicit)
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
            if event.anchor:
                anchors[event.anchor] = node
            attach(node)
        elif isinstance(event, (ev.SequenceStartEvent, ev.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise _fail(source, event.start_mark.line + 1, event.start_mark.column + 1,
                            f"nested more than {MAX_DEPTH} levels deep")
            is_seq = isinstance(event, ev.SequenceStartEvent)
            kind = SequenceNode if is_seq else MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(kind, None, event.implicit)
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if event.anchor:
                anchors[event.anchor] = node
            attach(node)
            stack.append((node, []))
        elif isinstance(event, (ev.SequenceEndEvent, ev.MappingEndEvent)):
            node, _ = stack.pop()
            node.end_mark = event.end_mark


def path_to_str(path: KeyPath) -> str:
    """("operators", 2, "input", 0) → "operators[2].input[0]"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass
class Document:
    """A parsed YAML document and where each of its parts came from."""

    data: Any
    source: str                                       # the file name shown in messages
    values: dict[KeyPath, Location] = field(default_factory=dict)   # where each value starts
    keys: dict[KeyPath, Location] = field(default_factory=dict)     # where each mapping key starts

    def at(self, path: KeyPath) -> Location:
        """Position of the value at `path`, or of its nearest parent that exists."""
        path = tuple(path)
        while path:
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Location(self.source, 1, 1))

    def key_at(self, path: KeyPath) -> Location:
        """Position of the key that introduces `path` (falls back to the value)."""
        return self.keys.get(tuple(path)) or self.at(path)

    def beside(self, path: str) -> str:
        """A path written in this document as messages name it: next to the document as it was given."""
        return os.path.normpath(os.path.join(os.path.dirname(self.source), path))

    def diagnostic(self, path: KeyPath, message: str, *, on_key: bool = False) -> Diagnostic:
        location = self.key_at(path) if on_key else self.at(path)
        return Diagnostic(location, path_to_str(path), message)


def _loc(source: str, mark: Any) -> Location:
    return Location(source, mark.line + 1, mark.column + 1)


def _fail(source: str, line: int, column: int, message: str) -> ProjectError:
    return ProjectError([Diagnostic(Location(source, line, column), "", message)])


class _Builder:
    """Turns composed nodes into plain JSON-like values, recording positions and problems."""

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.doc = Document(None, source)
        self.problems: list[Diagnostic] = []
        self.count = 0                     # values built again through aliases
        self.seen: set[int] = set()
        self.active: set[int] = set()      # nodes being built: an alias back into one is a cycle

    def build(self, node: Node, path: KeyPath) -> Any:
        if id(node) in self.seen:          # built before: we are inside an alias expansion
            self.count += 1
        else:
            self.seen.add(id(node))
        if self.count > MAX_NODES:
            top = path[:1]
            raise ProjectError([Diagnostic(self.doc.key_at(top), path_to_str(top),
                                           f"document expands to more than {MAX_NODES} values through aliases "
                                           "(an alias bomb?); refusing to read it")])
        if len(path) > MAX_DEPTH:
            raise ProjectError([Diagnostic(_loc(self.source, node.start_mark), path_to_str(path),
                                           f"nested more than {MAX_DEPTH} levels deep")])
        self.doc.values.setdefault(path, _loc(self.source, node.start_mark))
        if id(node) in self.active:
            raise ProjectError([Diagnostic(_loc(self.source, node.start_mark), path_to_str(path),
                                           "an alias refers to the value that contains it (recursive alias)")])
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != "tag:yaml.org,2002:seq":
                    self._problem(node, path, f"unsupported YAML tag {node.tag}")
                return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _problem(self, node: Node, path: KeyPath, message: str) -> None:
        self.problems.append(Diagnostic(_loc(self.source, node.start_mark), path_to_str(path), message))

    def _scalar(self, node: ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _PLAIN_TAGS:
            self._problem(node, path, f"unsupported YAML tag {node.tag} (only strings, numbers, booleans and null)")
            return node.value
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            self._problem(node, path, f"invalid value: {getattr(exc, 'problem', exc)}")
            return node.value

    def _mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self._problem(node, path, f"unsupported YAML tag {node.tag}")
        result: dict[str, Any] = {}
        first_seen: dict[str, Location] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:            # `<<: *defaults` — explicit keys win
                merged.update(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, ScalarNode):
                self._problem(key_node, path, "a mapping key must be a plain string, not a list or mapping")
                continue
            key = key_node.value                      # raw text: `on:` and `yes:` stay strings
            key_loc = _loc(self.source, key_node.start_mark)
            if key in first_seen:
                self.problems.append(Diagnostic(key_loc, path_to_str(path + (key,)),
                                                f"duplicate key '{key}' (first defined at line {first_seen[key].line})"))
                continue
            first_seen[key] = key_loc
            self.doc.keys[path + (key,)] = key_loc
            result[key] = self.build(value_node, path + (key,))
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def _merge_sources(self, node: Node, path: KeyPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in sources:
            value = self.build(source, path)
            if not isinstance(value, dict):
                self._problem(source, path, "`<<` merges mappings only")
                continue
            for key, item in value.items():
                merged.setdefault(key, item)
        return merged


def _decode(raw: bytes, source: str) -> str:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise _fail(source, line, 1, f"not a text file: binary data (NUL byte at offset {nul}); expected YAML")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise _fail(source, line, 1, f"not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                                     "expected a YAML file") from None


def parse_text(text: str, source: str, *, expect: str = "mapping") -> Document:
    """Parse one YAML document from text. `expect="mapping"` requires a mapping at the top."""
    if len(text) > MAX_FILE_BYTES:
        raise _fail(source, 1, 1, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; refusing to read it")
    if "\x00" in text:
        raise _fail(source, text.count("\n", 0, text.index("\x00")) + 1, 1, "not a text file: binary data (NUL byte)")
    loader = None
    try:
        if _CParser is not None:
            loader = _FastLoader(text)
            node = _compose(loader, source)
        else:
            loader = _Loader(text)
            node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        if "expected a single document" in message:
            message = "expected one YAML document, found more than one ('---')"
        elif "maximum nesting depth" in message:     # PyYAML >= 6.0.3 stops deep nesting itself
            message = f"nested more than {MAX_DEPTH} levels deep"
        raise _fail(source, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                    f"YAML syntax error: {message}") from None
    except yaml.reader.ReaderError as exc:  # control characters and the like
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise _fail(source, line, column, f"not a YAML text: character #x{exc.character:04x} is not allowed") from None
    except yaml.YAMLError as exc:
        raise _fail(source, 1, 1, f"not a readable YAML text: {exc}") from None
    except RecursionError:
        raise _fail(source, 1, 1, f"nested more than {MAX_DEPTH} levels deep") from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise _fail(source, 1, 1, f"file is empty; expected a YAML {expect}")
    builder = _Builder(loader, source)
    try:
        data = builder.build(node, ())
    except RecursionError:
        raise _fail(source, 1, 1, f"nested more than {MAX_DEPTH} levels deep") from None
    if builder.problems:
        raise ProjectError(builder.problems)
    if expect == "mapping" and not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else "null" if data is None else f"a single value ({type(data).__name__})"
        raise ProjectError([Diagnostic(builder.doc.at(()), "", f"the document is {kind}; expected a mapping of keys")])
    builder.doc.data = data
    return builder.doc


def parse_file(path: str | Path, source: str | None = None, *, expect: str = "mapping") -> Document:
    """Read and parse a YAML file; `source` is the name shown in messages (default: the path)."""
    path = Path(path)
    source = source or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise _fail(source, 1, 1, "file not found") from None
    except OSError as exc:
        raise _fail(source, 1, 1, f"cannot read: {exc.strerror}") from None
    if path.is_dir():
        raise _fail(source, 1, 1, "is a directory, expected a YAML file")
    if size > MAX_FILE_BYTES:
        raise _fail(source, 1, 1, f"file is {size / (1024 * 1024):.1f} MB, larger than the "
                                  f"{MAX_FILE_BYTES // (1024 * 1024)} MB limit; refusing to read it")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _fail(source, 1, 1, f"cannot read: {exc.strerror}") from None
    return parse_text(_decode(raw, source), source, expect=expect)
