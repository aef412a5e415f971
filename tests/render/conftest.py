"""Fixtures for the dashboard and viewer tests: the built UI, a render server on a temp store,
real headless Chromium (Debian's, through Playwright), and jobs written as store rows with real
NIfTI files in their payloads."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from claractl.platform.render import RenderService, create_app
from claractl.platform.render.routes import DIST

from .support import make_platform
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "render"
CHROMIUM = "/usr/bin/chromium"
# Keep WebGL2 on (SwiftShader, the CPU rasteriser) so the viewer really renders headless.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def _build_ui() -> None:
    """The tests drive the built assets; (re)build them when missing or older than the sources."""
    sources = [p for p in (REPO / "frontend").rglob("*") if p.is_file()] + [REPO / "package-lock.json"]
    index = DIST / "index.html"
    if index.is_file() and index.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("the UI is not built and npm is not installed: run scripts/setup.sh")
    if not (REPO / "node_modules").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=REPO, check=True)
    subprocess.run([npm, "run", "build", "--silent"], cwd=REPO, check=True)


@pytest.fixture(scope="session")
def built_ui() -> Path:
    _build_ui()
    return DIST


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:   # runs in a thread
        pass


def serve(service: RenderService, port: int) -> tuple[_Server, threading.Thread]:
    server = _Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("render test server did not start")
        time.sleep(0.02)
    return server, thread


def _running_platform(path: Path, **api):
    rp = make_platform(path, **api)
    port = free_port()
    server, thread = serve(rp.service, port)
    rp.url = f"http://127.0.0.1:{port}"
    yield rp
    server.should_exit = True
    thread.join(timeout=5)
    rp.service.stop()
    rp.store.dispose()


@pytest.fixture
def platform(tmp_path, built_ui):
    yield from _running_platform(tmp_path)


@pytest.fixture
def exposed_platform(tmp_path, built_ui):
    """Configured as reachable from the network (api.host 0.0.0.0) with a token; served on loopback."""
    yield from _running_platform(tmp_path, host="0.0.0.0", token="browser-token")


@pytest.fixture(scope="module")
def module_platform(tmp_path_factory, built_ui):
    """One server for a module whose tests share a loaded page (the viewer's WebGL warm-up is slow)."""
    yield from _running_platform(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _page(chromium, viewport):
    context = chromium.new_context(viewport=viewport)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.errors = errors      # uncaught exceptions and console errors (CSP violations, failed loads)
    return context, pg


@pytest.fixture
def page(chromium):
    context, pg = _page(chromium, {"width": 1280, "height": 860})
    yield pg
    context.close()


@pytest.fixture(scope="module")
def module_page(chromium):
    # Smaller than a desktop screen: SwiftShader renders every pixel on the CPU.
    context, pg = _page(chromium, {"width": 1000, "height": 640})
    yield pg
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
