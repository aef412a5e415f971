"""The platform token for NVIDIA's Clara client, from the environment — so Clara scripts run
unchanged against a platform that is not on loopback (a cluster's Service).

This file runs in the *client's* environment (nvidia-clara-client with protobuf < 4), not in
claractl's: it imports only `os` and `grpc`. Installed there as module `claractl_clara_token`
with a `.pth` line that imports it (scripts/clara-client-env.sh; docs/clara-api.md shows the two
commands), it runs when Python starts. With `CLARA_API_TOKEN` set, every gRPC channel the
process opens adds `authorization: Bearer <token>` to calls of the Clara Platform API (methods
`/nvidia.clara.platform.*`) and to no other call, so the token never reaches another gRPC server
(a Triton in the same script). Without it nothing changes.

Why a hook and not a `stub=`: Clara had no token, so no Clara script passes one; NVIDIA's clients
open their channel in `__init__` (`grpc.insecure_channel`), and the only other way in is a
hand-built stub on an intercepted channel for every client a script makes.
"""

from __future__ import annotations

import collections
import os

TOKEN_ENV = "CLARA_API_TOKEN"
CLARA_METHODS = "/nvidia.clara.platform."


def install() -> bool:
    """Wrap grpc's channel constructors when the token is set; True when it did."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return False
    try:
        import grpc
    except ImportError:                     # an environment without grpc: nothing to wrap
        return False
    if getattr(grpc.insecure_channel, "_claractl_token", False):
        return True

    class Details(collections.namedtuple("Details", "method timeout metadata credentials wait_for_ready compression"),
                  grpc.ClientCallDetails):
        pass

    class Token(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def _details(self, d):
            if not str(d.method).startswith(CLARA_METHODS):
                return d
            metadata = [m for m in (d.metadata or []) if m[0] != "authorization"]
            metadata.append(("authorization", f"Bearer {token}"))
            return Details(d.method, d.timeout, metadata, d.credentials, d.wait_for_ready,
                           getattr(d, "compression", None))

        def intercept_unary_unary(self, continuation, details, request):
            return continuation(self._details(details), request)

        intercept_unary_stream = intercept_unary_unary

        def intercept_stream_unary(self, continuation, details, requests):
            return continuation(self._details(details), requests)

        intercept_stream_stream = intercept_stream_unary

    def wrap(make):
        def channel(*args, **kwargs):
            return grpc.intercept_channel(make(*args, **kwargs), Token())
        channel._claractl_token = True
        return channel

    grpc.insecure_channel = wrap(grpc.insecure_channel)
    grpc.secure_channel = wrap(grpc.secure_channel)
    return True


if __name__ == "claractl_clara_token":      # as installed in a client environment (never inside claractl)
    install()
