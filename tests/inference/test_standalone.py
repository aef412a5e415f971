"""`python -m claractl.platform.inference`: what a CPU-only cluster runs instead of Triton."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.ports import free_port


def _run(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "claractl.platform.inference", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serves_repository_and_loads_named_models(repository):
    http_port, grpc_port = free_port(), free_port()
    proc = _run("--repository", str(repository), "--host", "127.0.0.1", "--http-port", str(http_port),
                "--grpc-port", str(grpc_port), "--load-model", "simple")
    try:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{http_port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.is_model_ready("simple"):
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "service did not come up"
            time.sleep(0.1)
        assert not client.is_model_ready("identity")           # explicit model control
        g = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        a = np.ones((1, 16), np.int32)
        inputs = [grpcclient.InferInput(n, [1, 16], "INT32") for n in ("INPUT0", "INPUT1")]
        for i in inputs:
            i.set_data_from_numpy(a)
        assert g.infer("simple", inputs).as_numpy("OUTPUT0").tolist() == [[2] * 16]
        g.close()
        client.close()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


def test_failed_model_load_at_start_exits_with_the_reason(repository):
    proc = _run("--repository", str(repository), "--host", "127.0.0.1", "--http-port", str(free_port()),
                "--grpc-port", str(free_port()), "--load-model", "broken")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "broken/config.pbtxt:6:20: input[0].data_type" in err and "Traceback" not in err


def test_a_model_load_retries_while_the_service_does_not_accept_connections_yet(repository, tmp_path):
    """A Triton behind a Service that just became ready may refuse connections for a moment (its
    endpoints are still being programmed): the platform's first model load retries instead of
    failing the apply with `Connection refused`."""
    import threading

    from claractl.platform.config import PlatformConfig
    from claractl.platform.engine.inference_hook import InferenceHook

    http_port, grpc_port = free_port(), free_port()
    config = PlatformConfig(state_dir=str(tmp_path))
    config.inference.url = f"http://127.0.0.1:{http_port}"
    started: list[subprocess.Popen] = []
    # The service comes up 2 s after the load was asked for.
    threading.Timer(2.0, lambda: started.append(_run("--repository", str(repository), "--host", "127.0.0.1",
                                                     "--http-port", str(http_port),
                                                     "--grpc-port", str(grpc_port)))).start()
    try:
        t0 = time.monotonic()
        InferenceHook(config).load("simple")
        assert time.monotonic() - t0 >= 2.0            # it really had to wait for the service
        assert httpclient.InferenceServerClient(f"127.0.0.1:{http_port}").is_model_ready("simple")
    finally:
        time.sleep(0.1)
        for proc in started:
            proc.terminate()
            proc.wait(15)
