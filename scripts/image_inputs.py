#!/usr/bin/env python3
"""Helpers of scripts/build-images.sh (standard library only: runs with any python3 >= 3.9).

  image_inputs.py digest CONTEXT DOCKERFILE [EXTRA...]
      sha256 of what an image is built from: the Dockerfile, every file its COPY/ADD instructions
      take from the build context (as .dockerignore filters it) and EXTRA strings (base image id,
      build arguments, pip settings). Equal digest = nothing that goes into the image changed.
  pip config list | image_inputs.py pip-config OUTDIR MOUNT_POINT
      this machine's pip settings for a build: writes OUTDIR/pip.conf (to be mounted read-only at
      MOUNT_POINT) with the CA bundle and constraints files copied beside it, and prints the
      bind mounts the build needs, one `SRC:DST:ro` a line: OUTDIR itself and every local folder
      the settings name (wheel folders; a file:// index's parent folder), at the same path.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

# -- digest -----------------------------------------------------------------------------------------


def _ignore_rules(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore as (negated, regex) in order; the last rule that matches a path or one of its
    parent folders decides (Docker's semantics: `*` stays within a folder, `**` crosses folders)."""
    rules = []
    path = context / ".dockerignore"
    for line in path.read_text().splitlines() if path.exists() else []:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def _ignored(rel: str, rules) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for negated, regex in rules:
        if any(regex.match(p) for p in prefixes):
            ignored = not negated
    return ignored


def _copy_sources(dockerfile: Path) -> list[str]:
    """Context paths named by COPY/ADD instructions (not `COPY --from=`, which copies from a stage)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [a for a in args if a.startswith("--")]
        if any(f.startswith("--from") for f in flags):
            continue
        sources += [a for a in args if not a.startswith("--")][:-1]
    return sources


def digest(context: Path, dockerfile: Path, extras: list[str]) -> str:
    rules = _ignore_rules(context)
    h = hashlib.sha256()
    h.update(dockerfile.read_bytes())
    for extra in extras:
        h.update(b"\0extra\0" + extra.encode())
    files: set[str] = set()
    for source in _copy_sources(dockerfile):
        top = context / source
        if top.is_dir():
            for root, dirs, names in os.walk(top):
                rel_root = Path(root).relative_to(context).as_posix()
                dirs[:] = [d for d in dirs if not _ignored(f"{rel_root}/{d}", rules)]
                files.update(f"{rel_root}/{n}" for n in names if not _ignored(f"{rel_root}/{n}", rules))
        elif top.exists() and not _ignored(source, rules):
            files.add(Path(source).as_posix())
        else:   # the build will fail on it; still part of the digest
            files.add(f"missing:{source}")
    for rel in sorted(files):
        path = context / rel
        h.update(b"\0file\0" + rel.encode())
        if path.is_symlink():
            h.update(b"link:" + os.readlink(path).encode())
        elif path.is_file():
            h.update(b"x" if os.access(path, os.X_OK) else b"-")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


# -- pip settings ------------------------------------------------------------------------------------

# Settings about where packages come from; others (target, user, cache-dir, ...) are the host's own.
FETCH_KEYS = {"index-url", "extra-index-url", "find-links", "no-index", "trusted-host", "cert",
              "client-cert", "constraint", "timeout", "default-timeout", "retries", "proxy",
              "only-binary", "prefer-binary", "pre"}
COPIED_FILE_KEYS = {"cert", "client-cert", "constraint"}


def pip_config(listing: str, outdir: Path, mount_point: str) -> list[str]:
    settings: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    for line in listing.splitlines():
        key, sep, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if not sep or name not in FETCH_KEYS:
            continue
        value = ast.literal_eval(value) if value[:1] in "'\"" else value
        if section == ":env:":
            env[name] = value
        else:
            settings.setdefault(section, {})[name] = value
    settings.setdefault("global", {}).update(env)   # PIP_* variables win over files, as in pip
    outdir.mkdir(parents=True, exist_ok=True)
    mounts = {f"{outdir}:{mount_point}:ro"}
    for section, values in settings.items():
        for name, value in values.items():
            tokens = []
            for token in value.split():
                path = token[len("file://"):] if token.startswith("file://") else token
                if name in COPIED_FILE_KEYS and os.path.isfile(path):
                    copy = outdir / f"{name}-{Path(path).name}"
                    shutil.copyfile(path, copy)
                    token = f"{mount_point}/{copy.name}"
                elif path.startswith("/") and os.path.exists(path):
                    if name.endswith("index-url") and os.path.dirname(path.rstrip("/")) != "/":
                        # a file:// index's pages link to files beside it (simple/x/ -> ../../files/)
                        path = os.path.dirname(path.rstrip("/"))
                    mounts.add(f"{path}:{path}:ro")
                tokens.append(token)
            values[name] = " ".join(tokens)
    (outdir / "pip.conf").write_text("".join(
        f"[{section}]\n" + "".join(f"{k} = {v}\n" for k, v in sorted(values.items())) + "\n"
        for section, values in sorted(settings.items()) if values))
    return sorted(mounts)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "digest":
        print(digest(Path(argv[1]), Path(argv[2]), argv[3:]))
    elif len(argv) == 3 and argv[0] == "pip-config":
        print("\n".join(pip_config(sys.stdin.read(), Path(argv[1]), argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
