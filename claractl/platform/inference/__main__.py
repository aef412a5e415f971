"""Standalone inference service: `python -m claractl.platform.inference --repository DIR`.

What a CPU-only Kubernetes cluster runs instead of the Triton image (same ports, same protocol).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from claractl.platform.config import InferenceSettings, PlatformConfig
from claractl.platform.inference.errors import InferenceError
from claractl.platform.inference.service import InferenceService, InferenceServiceError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claractl.platform.inference",
                                     description="Triton-protocol inference service backed by ONNX Runtime")
    parser.add_argument("--repository", "--model-repository", required=True, help="model repository directory")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--load-model", action="append", default=[], metavar="NAME",
                        help="load this model at start (repeatable; '*' loads every model)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    config = PlatformConfig()
    config.inference = InferenceSettings(host=args.host, http_port=args.http_port, grpc_port=args.grpc_port)
    service = InferenceService(config, store=None, repository=args.repository)
    try:
        service.start()
    except (InferenceServiceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    names = args.load_model
    if "*" in names:
        names = [row["name"] for row in service.registry.index()]
    failed = False
    for name in names:
        try:
            service.load_model(name)
        except InferenceError as e:
            print(f"error: {e.message}", file=sys.stderr)
            failed = True
    if failed:
        service.stop()
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
