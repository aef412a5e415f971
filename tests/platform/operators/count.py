"""Test operator: append the job id to a ledger (each job must appear exactly once), write an output."""
import os
import sys
from pathlib import Path

ledger, out = Path(sys.argv[1]), Path(sys.argv[2])
with open(ledger, "a") as fh:
    fh.write(os.environ["NVIDIA_CLARA_JOB_ID"] + "\n")
(out / "done.txt").write_text(os.environ["NVIDIA_CLARA_JOB_ID"])
