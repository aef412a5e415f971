"""Run only the DICOM adapter: `python -m claractl.platform.dicom --state-dir DIR`.

For the Kubernetes Deployment and for tests that must kill the SCP process. Stops cleanly on
SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from claractl.platform.config import PlatformConfig
from claractl.platform.dicom.adapter import DicomAdapter
from claractl.platform.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m claractl.platform.dicom")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--no-export", action="store_true", help="do not run the SCU export agent")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    config = PlatformConfig.load(args.state_dir)
    store = Store(config.database_url)
    store.create_all()
    adapter = DicomAdapter(config, store, export_agent=not args.no_export)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    adapter.start()
    print(f"listening {adapter.port}", flush=True)
    done.wait()
    adapter.stop()


if __name__ == "__main__":
    main()
