"""The Clara Platform API as a platform component: a gRPC server on `api.host:api.grpc_port`.

    server = ClaraApiServer(config, store)
    server.bind(context)      # the platform's operations Context (engine to wake, inference hook, stop)
    server.start(); server.status(); server.stop()

Authentication follows the HTTP API's rule: when the API listens beyond loopback, every call that
changes something needs the platform token as call metadata (`authorization: Bearer <token>` or
`x-clara-token: <token>`); reading calls stay open.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from claractl.platform.api.auth import ensure_token, is_loopback, token_accepted
from claractl.platform.clara_api import protos
from claractl.platform.clara_api.calls import generic_handler
from claractl.platform.clara_api.clara import ClaraService
from claractl.platform.clara_api.jobs import JobsService
from claractl.platform.clara_api.models import ModelsService
from claractl.platform.clara_api.payloads import PayloadsService
from claractl.platform.clara_api.pipelines import PipelinesService
from claractl.platform.config import PlatformConfig
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.operations import Context
from claractl.platform.store import Store

log = logging.getLogger("claractl.clara_api")
SERVICES = (ClaraService, PipelinesService, JobsService, PayloadsService, ModelsService)
READS = {f"/{protos.PACKAGE}.{rpc}" for rpc in (
    "Clara/Version", "Clara/Utilization", "Pipelines/List", "Pipelines/Details", "Jobs/List", "Jobs/Status",
    "Jobs/ReadLogs", "Payloads/Details", "Payloads/Download", "Models/ListModels", "Models/DownloadModel",
    "Models/ListCatalogs", "Models/ListInstances", "Models/ReadCatalog", "Models/ReadInstance")}
UNAUTHENTICATED = "a valid platform token is required for this call (call metadata: authorization: Bearer <token>)"
MAX_MESSAGE = 16 * 1024 * 1024
WORKERS = 16


class ClaraApiError(RuntimeError):
    pass


class _TokenCheck(grpc.ServerInterceptor):
    def __init__(self, token: str | None) -> None:
        self.token = token

    def intercept_service(self, continuation, details):
        if details.method in READS:
            return continuation(details)
        meta = {k.lower(): v for k, v in details.invocation_metadata or ()}
        if token_accepted(meta.get("authorization"), meta.get("x-clara-token"), self.token):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return None

        def deny(_request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED)

        make = {(False, False): grpc.unary_unary_rpc_method_handler, (False, True): grpc.unary_stream_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
        return make[(handler.request_streaming, handler.response_streaming)](deny)


class ClaraApiServer:
    def __init__(self, config: PlatformConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.context = Context(config, store, InferenceHook(config))
        self.server: grpc.Server | None = None
        self.port: int | None = None

    def bind(self, context: Context) -> None:
        self.context = context

    @property
    def address(self) -> str:
        return f"{self.config.api.host}:{self.port or self.config.api.grpc_port}"

    def start(self) -> None:
        try:
            descriptors = {svc.SERVICE: protos.service(svc.SERVICE) for svc in SERVICES}
        except protos.ProtosUnavailable as exc:
            raise ClaraApiError(str(exc)) from exc
        interceptors = [] if is_loopback(self.config.api.host) else [_TokenCheck(ensure_token(self.config))]
        server = grpc.server(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="clara-api"),
                             interceptors=interceptors,
                             options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE),
                                      ("grpc.so_reuseport", 0)])
        for svc in SERVICES:
            server.add_generic_rpc_handlers((generic_handler(svc(self.context), descriptors[svc.SERVICE]),))
        try:
            self.port = server.add_insecure_port(f"{self.config.api.host}:{self.config.api.grpc_port}")
        except RuntimeError as exc:
            self.port = 0
            log.debug("bind failed: %s", exc)
        if not self.port:
            server.stop(None)
            raise ClaraApiError(f"the Clara API cannot listen on {self.address} (port in use?)")
        server.start()
        self.server = server
        log.info("Clara Platform API (gRPC) on %s", self.address)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=5).wait(10)
            self.server = None

    def status(self) -> dict[str, Any]:
        running = self.server is not None
        return {"state": "running" if running else "stopped", "ready": running, "address": self.address,
                "port": self.port}
