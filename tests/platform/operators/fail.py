"""Test operator: print a message and exit with code 3."""
import sys

print("something went wrong", file=sys.stderr)
sys.exit(3)
