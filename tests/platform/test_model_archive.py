"""Model uploads are tar archives: extracted safely on every Python >= 3.11, including Debian 12's
3.11.2, which has no `TarFile.extractall(filter=...)` (the upload used to answer 500 there).
Through the real platform API: a good archive is stored; each unsafe member is refused with 422
naming it, and nothing of the upload is left in the model repository."""

from __future__ import annotations

import io
import tarfile

import httpx
import pytest

from platform_helpers import RunningPlatform, identity_model, make_config


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = RunningPlatform(make_config(tmp_path_factory.mktemp("state")))
    yield running
    running.stop()


def put(platform: RunningPlatform, name: str, body: bytes) -> httpx.Response:
    return httpx.put(f"{platform.config.api_url}/api/v1/models/{name}", content=body,
                     headers={"Authorization": f"Bearer {platform.platform.token}"}, timeout=60)


def archive(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def model_tar(tmp_path, name: str, *extra: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    """A valid Triton model directory as `claractl` uploads it (folder on top), plus extra members."""
    root = identity_model(tmp_path / "src", name)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(root, arcname=name)
        for info, data in extra:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def test_a_model_archive_is_extracted_and_stored(platform, tmp_path):
    r = put(platform, "good", model_tar(tmp_path, "good"))
    assert r.status_code in (200, 201), r.text
    stored = platform.config.models_dir / "good"
    assert (stored / "config.pbtxt").read_text().startswith('name: "good"')
    assert (stored / "1" / "model.onnx").read_bytes() == (tmp_path / "src" / "good" / "1" / "model.onnx").read_bytes()


def test_stored_files_are_the_platform_users_without_the_archives_modes(platform, tmp_path):
    labels = member("modes/labels.txt")
    labels.mode, labels.uid, labels.gid = 0o4777, 4242, 4242    # setuid, world-writable, someone else's
    r = put(platform, "modes", model_tar(tmp_path, "modes", (labels, b"liver\n")))
    assert r.status_code in (200, 201), r.text
    stored = (platform.config.models_dir / "modes" / "labels.txt").stat()
    assert stored.st_mode & 0o7022 == 0 and stored.st_uid != 4242


UNSAFE = {
    "absolute path": ((member("/etc/clara-evil"), b"x"), "'/etc/clara-evil' has an absolute path"),
    "dot-dot": ((member("good/../../escape.txt"), b"x"), "'good/../../escape.txt' leaves the model directory"),
    "symlink outside": ((member("good/passwd", tarfile.SYMTYPE, "/etc/passwd"), None),
                        "'good/passwd' is a symbolic link to '/etc/passwd' (outside the model directory)"),
    "symlink inside": ((member("good/alias", tarfile.SYMTYPE, "config.pbtxt"), None),
                       "'good/alias' is a symbolic link to 'config.pbtxt' (inside the model directory); "
                       "only regular files and directories are accepted"),
    "hard link outside": ((member("good/shadow", tarfile.LNKTYPE, "../../etc/shadow"), None),
                          "'good/shadow' is a hard link to '../../etc/shadow' (outside the model directory)"),
    "character device": ((member("good/null", tarfile.CHRTYPE), None), "'good/null' is a device"),
    "block device": ((member("good/sda", tarfile.BLKTYPE), None), "'good/sda' is a device"),
    "fifo": ((member("good/pipe", tarfile.FIFOTYPE), None), "'good/pipe' is not a regular file or directory"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_an_unsafe_member_refuses_the_whole_upload(platform, tmp_path, case):
    extra, message = UNSAFE[case]
    name = "unsafe-" + case.replace(" ", "-")
    r = put(platform, name, model_tar(tmp_path, name, extra))
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    models = platform.config.models_dir
    assert not (models / name).exists()
    assert not any(p.name.startswith(".upload-") for p in models.iterdir())   # scratch area removed
