"""Test operator: append this job's name to an order file, then wait until a release file exists."""
import os
import sys
import time
from pathlib import Path

order, release = Path(sys.argv[1]), Path(sys.argv[2])
with open(order, "a") as fh:
    fh.write(os.environ["NVIDIA_CLARA_JOB_NAME"] + "\n")
    fh.flush()
    os.fsync(fh.fileno())
deadline = time.time() + 120
while not release.exists() and time.time() < deadline:
    time.sleep(0.05)
