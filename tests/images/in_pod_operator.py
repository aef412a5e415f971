"""Run inside an operator image by tests/images/test_images.py (as `python -c MODULE LIBRARY...`):
the operator's --help, every module of its package and each library its Dockerfile installs
imported. Prints one JSON line."""

import importlib
import json
import os
import pkgutil
import subprocess
import sys

module, libraries = sys.argv[1], sys.argv[2:]
helped = subprocess.run([sys.executable, "-m", f"claractl_operators.{module}", "--help"],
                        capture_output=True, text=True)
package = importlib.import_module(f"claractl_operators.{module}")
modules = [package.__name__] + sorted(m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                                     if not m.name.endswith(".__main__"))   # __main__ runs the operator: --help did
failed = {}
for name in modules + libraries:
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 — reported, the test names it
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"help": [helped.returncode, helped.stdout, helped.stderr[-1500:]], "modules": modules,
                  "libraries": libraries, "failed": failed, "python": sys.version.split()[0],
                  "executable": os.path.realpath(sys.executable), "base_prefix": sys.base_prefix,
                  "uid": os.getuid()}))
