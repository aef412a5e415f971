"""Test operator 2: two named outputs — lines with an even index go left, odd ones right."""
import sys
from pathlib import Path

src, left, right = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
for f in sorted(src.glob("*.txt")):
    lines = f.read_text().splitlines()
    (left / f.name).write_text("\n".join(lines[0::2]) + "\n")
    (right / f.name).write_text("\n".join(lines[1::2]) + "\n")
print("split done")
