"""scripts/image_inputs.py: what decides that an image is up to date (the digest of its inputs) and
the pip settings a build gets. No container tool needed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("image_inputs", ROOT / "scripts" / "image_inputs.py")
image_inputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(image_inputs)


@pytest.fixture
def context(tmp_path):
    (tmp_path / ".dockerignore").write_text("*\n!app\n!setup.py\n**/__pycache__\n**/*.pyc\napp/local\n")
    (tmp_path / "app" / "pkg").mkdir(parents=True)
    (tmp_path / "app" / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "setup.py").write_text("setup()\n")
    (tmp_path / "notes.txt").write_text("not in the image\n")
    (tmp_path / "Dockerfile").write_text("FROM base\nCOPY setup.py /src/\nCOPY app \\\n  /src/app\n"
                                         "COPY --from=builder /out /out\n")
    return tmp_path


def digest(context: Path, *extra: str) -> str:
    return image_inputs.digest(context, context / "Dockerfile", list(extra))


def test_the_digest_follows_what_the_image_copies(context):
    before = digest(context, "base=sha256:1")
    assert digest(context, "base=sha256:1") == before
    (context / "app" / "pkg" / "mod.py").write_text("x = 2\n")
    assert digest(context, "base=sha256:1") != before


@pytest.mark.parametrize("change", ["pycache", "pyc", "not copied", "ignored folder"])
def test_files_the_build_never_sees_leave_the_digest_alone(context, change):
    before = digest(context)
    target = {"pycache": "app/pkg/__pycache__/mod.cpython-311.pyc", "pyc": "app/pkg/stale.pyc",
              "not copied": "notes.txt", "ignored folder": "app/local/cache.bin"}[change]
    (context / target).parent.mkdir(parents=True, exist_ok=True)
    (context / target).write_text("anything")
    assert digest(context) == before


@pytest.mark.parametrize("change", ["dockerfile", "new file", "executable bit", "base image"])
def test_anything_that_reaches_the_image_changes_the_digest(context, change):
    before = digest(context, "base=sha256:1")
    extra = "base=sha256:1"
    if change == "dockerfile":
        (context / "Dockerfile").write_text((context / "Dockerfile").read_text() + "USER 10001\n")
    elif change == "new file":
        (context / "app" / "new.py").write_text("")
    elif change == "executable bit":
        (context / "setup.py").chmod(0o755)
    else:
        extra = "base=sha256:2"
    assert digest(context, extra) != before


def test_copy_sources_skip_stage_copies_and_flags(context):
    (context / "Dockerfile").write_text('FROM b\nCOPY --chown=1:1 a b /dst/\nCOPY ["c", "/d"]\n'
                                        "COPY --from=stage /x /y\nADD e /f\nRUN cp g h\n")
    assert image_inputs._copy_sources(context / "Dockerfile") == ["a", "b", "c", "e"]


def test_pip_settings_for_a_build(tmp_path):
    wheels, index = tmp_path / "wheels", tmp_path / "pypi" / "simple"
    wheels.mkdir()
    index.mkdir(parents=True)
    ca, constraints = tmp_path / "ca.crt", tmp_path / "constraints.txt"
    ca.write_text("CERT\n")
    constraints.write_text("torch<=2\n")
    listing = (f":env:.find-links='{wheels}'\n"
               f"global.cert='{ca}'\n"
               f"global.constraint='{constraints}'\n"
               f"global.extra-index-url='file://{index} https://example.org/simple'\n"
               "global.find-links='/elsewhere'\n"            # overridden by PIP_FIND_LINKS
               "global.target='/home/me/lib'\n"              # the host's own: not for the build
               "install.prefer-binary='1'\n")
    out = tmp_path / "out"
    mounts = image_inputs.pip_config(listing, out, "/run/clara-pip")
    assert mounts == sorted([f"{out}:/run/clara-pip:ro", f"{index.parent}:{index.parent}:ro",
                             f"{wheels}:{wheels}:ro"])
    conf = (out / "pip.conf").read_text()
    assert conf == ("[global]\n"
                    "cert = /run/clara-pip/cert-ca.crt\n"
                    "constraint = /run/clara-pip/constraint-constraints.txt\n"
                    f"extra-index-url = file://{index} https://example.org/simple\n"
                    f"find-links = {wheels}\n\n"
                    "[install]\nprefer-binary = 1\n\n")
    assert (out / "cert-ca.crt").read_text() == "CERT\n"
    assert (out / "constraint-constraints.txt").read_text() == "torch<=2\n"


def test_every_dockerfile_starts_with_the_same_steps():
    """Builders share layers only for identical steps: the base, venv and user steps of all images."""
    def prefix(path: Path) -> str:
        text = path.read_text()
        start = text.index("ARG BASE_IMAGE=")
        return text[start:text.index("ARG PIP_CONFIG_FILE\n", start)]

    dockerfiles = [ROOT / "Dockerfile", *sorted(ROOT.glob("operators/*/Dockerfile"))]
    assert len(dockerfiles) == 6
    assert {prefix(p) for p in dockerfiles} == {prefix(ROOT / "Dockerfile")}
