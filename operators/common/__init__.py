"""Helpers shared by the bundled operators: error reporting, NIfTI I/O, inference-service and
platform-API access."""
