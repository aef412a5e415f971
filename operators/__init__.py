"""Bundled claractl operators (one subpackage each: code, operator.yaml, Dockerfile, README)."""
