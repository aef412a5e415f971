"""Running the platform as an OS process, and finding and stopping it.

    claractl platform serve --state-dir DIR       # foreground (what a container runs)
    python -m claractl.platform.process serve …   # the same, used by `platform start`

`serve` runs a claractl.platform.server.Platform in the foreground. Background management
(`start_background`, `stop_background`, `platform_status`) keeps a pid file and a log file in
the state dir; an flock on `<state-dir>/platform.lock`, held for the life of the process, makes
sure two platforms never share one state dir.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from claractl.platform.config import PlatformConfig, load_config, read_token
from claractl.platform.errors import PlatformError

# Clients (the CLI, the local target) use the background-management half of this module on
# every command: the runtime (server, store, FastAPI) and httpx are imported where they are used.

log = logging.getLogger("claractl.platform")

LOCK_FILE = "platform.lock"
PID_FILE = "platform.pid"
RUNTIME_FILE = "platform.runtime.json"   # what the running process really uses (API URL), for clients
LOG_FILE = "platform.log"          # under <state-dir>/logs/


# -- single instance per state dir ---------------------------------------------------------------
def _lock_path(state_dir: Path) -> Path:
    return Path(state_dir).resolve() / LOCK_FILE


def acquire_instance_lock(state_dir: Path) -> int:
    """Hold the state dir's flock (kept until the process exits) or raise PlatformError."""
    path = _lock_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = read_pid(state_dir)
        raise PlatformError(f"a platform is already running on state dir {Path(state_dir).resolve()}"
                            + (f" (pid {pid})" if pid else ""))
    return fd


def is_running(state_dir: Path) -> bool:
    path = _lock_path(state_dir)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((Path(state_dir).resolve() / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def serve(state_dir: str, config_file: str | None = None, roles: tuple[str, ...] | None = None,
          replica: str | None = None) -> None:
    """`claractl platform serve`: foreground, one per state dir — or, where the settings say the
    state is shared (`cluster.shared_state`, high availability on kubernetes), one of several
    processes with `roles` (api, engine, dicom) and a `replica` name of its own (the pod's)."""
    from claractl.platform.server import ROLES, Platform
    from claractl.platform.store import SchemaTooNewError

    config = load_config(state_dir, config_file)
    config.root.mkdir(parents=True, exist_ok=True)
    if replica:
        config.cluster.replica = replica
    if config.cluster.shared_state:      # no instance lock, pid or runtime file: shared on purpose
        try:
            Platform(config, config_file=config_file, roles=roles or ROLES).serve_forever()
        except SchemaTooNewError as exc:
            raise PlatformError(str(exc)) from exc
        return
    lock_fd = acquire_instance_lock(config.root)
    pid_file = config.root / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    runtime = config.root / RUNTIME_FILE

    def write_runtime(cfg: PlatformConfig) -> None:
        tmp = runtime.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "api_url": cfg.api_url,
                                   "config": cfg.to_dict(redact=True)}, indent=2))
        os.replace(tmp, runtime)

    write_runtime(config)
    try:
        Platform(config, config_file=config_file, on_reload=write_runtime, roles=roles or ROLES).serve_forever()
    except SchemaTooNewError as exc:
        raise PlatformError(str(exc)) from exc
    finally:
        runtime.unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        os.close(lock_fd)


def parse_roles(text: str | None) -> tuple[str, ...] | None:
    """"api,engine" → ("api", "engine"); None/"" → None (all roles)."""
    return tuple(r.strip() for r in text.split(",") if r.strip()) if text else None


# -- background management -----------------------------------------------------------------------
def log_file(state_dir: str | os.PathLike[str]) -> Path:
    return Path(state_dir).resolve() / "logs" / LOG_FILE


def endpoints(config: PlatformConfig, components: dict[str, Any] | None = None) -> dict[str, str]:
    out = {"api": config.api_url, "openapi": f"{config.api_url}/api/v1/openapi.json"}
    comps = components or {}
    if config.dicom.enabled and ("dicom" in comps or not comps):
        out["dicom"] = f"{config.dicom.ae_title}@{config.dicom.host}:{config.dicom.port}"
    if config.inference.url:
        out["inference"] = config.inference.url
    elif config.inference.enabled and ("inference" in comps or not comps):
        out["inference"] = f"http://{config.inference.host}:{config.inference.http_port} (gRPC :{config.inference.grpc_port})"
    if config.render.enabled and ("render" in comps or not comps):
        out["render"] = f"http://127.0.0.1:{config.render.port}"
    return out


def running_config(state_dir: str | os.PathLike[str]) -> PlatformConfig:
    """The settings of the platform running on state_dir (its --config may differ from platform.json)."""
    path = Path(state_dir).resolve() / RUNTIME_FILE
    if path.exists():
        try:
            data = json.loads(path.read_text())["config"]
            data["state_dir"] = str(Path(state_dir).resolve())
            return PlatformConfig.from_dict(data)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return PlatformConfig.load(state_dir)


def platform_status(state_dir: str, timeout: float = 3.0) -> dict[str, Any]:
    config = running_config(state_dir)
    running = is_running(config.root)
    out: dict[str, Any] = {"state_dir": str(config.root), "running": running, "pid": read_pid(config.root) if running else None,
                           "api": config.api_url, "log": str(log_file(state_dir))}
    if running:
        import httpx

        try:
            r = httpx.get(f"{config.api_url}/health/ready", timeout=timeout)
            body = r.json()
            out["ready"] = r.status_code == 200
            out["components"] = body.get("components", {})
        except (httpx.HTTPError, ValueError) as exc:
            out["ready"] = False
            out["message"] = f"API not answering: {type(exc).__name__}"
        out["endpoints"] = endpoints(config, out.get("components"))
    return out


def start_background(state_dir: str, config_file: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Start `serve` detached; wait until /health/ready answers 200; return platform_status()."""
    import httpx

    root = Path(state_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    if is_running(root):
        status = platform_status(str(root))
        status["already_running"] = True
        return status
    logf = log_file(root)
    logf.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "claractl.platform.process", "serve", "--state-dir", str(root)]
    if config_file:
        argv += ["--config", str(Path(config_file).resolve())]
    with open(logf, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=str(root))
    config = load_config(root, config_file)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PlatformError(f"the platform exited with code {proc.returncode} while starting; "
                                f"last log lines ({logf}):\n{tail(logf, 15)}")
        try:
            if httpx.get(f"{config.api_url}/health/ready", timeout=2).status_code == 200:
                status = platform_status(str(root))
                status["already_running"] = False
                return status
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    waiting_for = _components_not_ready(config)
    stop_background(str(root))      # a platform that never became ready is not left behind half-started
    raise PlatformError(f"the platform did not become ready within {timeout:g} s{waiting_for}; stopped it; "
                        f"see {logf}")


def _components_not_ready(config: PlatformConfig) -> str:
    import httpx

    try:
        components = httpx.get(f"{config.api_url}/health/ready", timeout=2).json().get("components", {})
    except (httpx.HTTPError, ValueError):
        return " (the API never answered)"
    names = sorted(name for name, st in components.items() if not st.get("ready"))
    return f" (not ready: {', '.join(names)})" if names else ""


def stop_background(state_dir: str, timeout: float = 30.0) -> dict[str, Any]:
    """SIGTERM, wait up to `timeout`, then SIGKILL. Returns {was_running, pid, killed}."""
    root = Path(state_dir).resolve()
    pid = read_pid(root)
    if not is_running(root) or pid is None:
        return {"was_running": False, "pid": None, "killed": False}
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return {"was_running": False, "pid": pid, "killed": False}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(root):
            return {"was_running": True, "pid": pid, "killed": False}
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    while is_running(root) and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    return {"was_running": True, "pid": pid, "killed": True}


def tail(path: Path, lines: int = 50) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def api_token(state_dir: str) -> str | None:
    """The token a client on this machine should send (env var, config, or state-dir file)."""
    return read_token(PlatformConfig.load(state_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claractl.platform.process")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--state-dir", default=".clara")
    parser.add_argument("--config", default=None)
    parser.add_argument("--roles", default=None, help="comma-separated: api, engine, dicom (default all)")
    parser.add_argument("--replica", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(args.state_dir, args.config, parse_roles(args.roles), args.replica)
    except PlatformError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
