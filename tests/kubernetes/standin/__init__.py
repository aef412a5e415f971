"""An honest, small HTTP stand-in for the Kubernetes API server (tests only; see server.py)."""

from .server import StandIn

__all__ = ["StandIn"]
