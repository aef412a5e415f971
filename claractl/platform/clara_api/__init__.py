"""The Clara Platform API (gRPC, proto package `nvidia.clara.platform`) as NVIDIA's
`nvidia-clara-client` speaks it, served from the same operations as the HTTP API
(claractl.platform.operations). docs/clara-api.md maps each call to what claractl does."""

from claractl.platform.clara_api.server import ClaraApiError, ClaraApiServer

__all__ = ["ClaraApiServer", "ClaraApiError"]
