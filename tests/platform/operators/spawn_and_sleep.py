"""Test operator: starts a child (which starts a grandchild) and sleeps; records all pids so a
test can check that cancel/timeout leave no process behind."""
import os
import subprocess
import sys
import time
from pathlib import Path

pid_file = Path(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2] == "child":
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pid_file, "a") as fh:
        fh.write(f"{os.getpid()}\n{grandchild.pid}\n")
    time.sleep(600)
else:
    child = subprocess.Popen([sys.executable, __file__, str(pid_file), "child"])
    with open(pid_file, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(600)
