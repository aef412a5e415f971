"""Test operator 1: copy every input file to the output with its text upper-cased."""
import sys
from pathlib import Path

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for f in sorted(src.rglob("*")):
    if f.is_file():
        out = dst / f.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f.read_text().upper())
print(f"upper: {sum(1 for p in dst.rglob('*') if p.is_file())} file(s)")
