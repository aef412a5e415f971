"""Triton's HTTP/REST protocol (KServe v2 + Triton extensions) as a Starlette app.

The binary tensor data extension is the fast path: input bytes are sliced out of the request body
and viewed with numpy.frombuffer; output arrays are appended to the JSON header unconverted.
"""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from anyio import to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from claractl.platform.inference.errors import InferenceError, invalid
from claractl.platform.inference.metadata import model_metadata, server_metadata
from claractl.platform.inference.repository import config_to_json
from claractl.platform.inference.runtime import ModelRegistry, Tensor, tensor_from_bytes, tensor_from_list

HEADER_LENGTH = "Inference-Header-Content-Length"


def _error(e: InferenceError) -> JSONResponse:
    return JSONResponse({"error": e.message}, status_code=e.http_status)


def _ok_or_400(ok: bool) -> Response:
    return Response(status_code=200 if ok else 400)


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    try:
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
    except (OSError, zlib.error) as e:
        raise invalid(f"failed to decompress the request body ({encoding}): {e}") from None
    raise InferenceError("unsupported", f"unsupported Content-Encoding '{encoding}'")


def _gzip_fast(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1)


def _deflate_fast(data: bytes) -> bytes:
    return zlib.compress(data, 1)


def _json(data: bytes | memoryview, what: str) -> Any:
    try:
        return json.loads(bytes(data) if isinstance(data, memoryview) else data) if len(data) else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise invalid(f"failed to parse the {what} JSON buffer: {e}") from None


def parse_infer_request(body: bytes, header_length: str | None) -> tuple[dict, list[Tensor]]:
    """Split the request into its JSON header and input tensors (binary parts viewed, not copied)."""
    if header_length is not None:
        try:
            hlen = int(header_length)
        except ValueError:
            raise invalid(f"{HEADER_LENGTH} '{header_length}' is not a number") from None
        if not 0 <= hlen <= len(body):
            raise invalid(f"{HEADER_LENGTH} {hlen} exceeds the request body ({len(body)} bytes)")
        header, binary = _json(memoryview(body)[:hlen], "request"), memoryview(body)[hlen:]
    else:
        header, binary = _json(body, "request"), memoryview(b"")
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise invalid("inference request JSON needs an 'inputs' list")
    offset, tensors = 0, []
    for item in header["inputs"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid("each inference input needs a 'name'")
        name, datatype, shape = item["name"], item.get("datatype"), item.get("shape")
        if not isinstance(datatype, str) or not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise invalid(f"input '{name}' needs 'datatype' (string) and 'shape' (list of integers)")
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or offset + size > len(binary):
                raise invalid(f"input '{name}' binary_data_size {size} runs past the end of the request body")
            tensors.append(tensor_from_bytes(name, datatype, shape, binary[offset:offset + size]))
            offset += size
        elif "data" in item:
            tensors.append(tensor_from_list(name, datatype, shape, item["data"]))
        else:
            raise invalid(f"input '{name}' has neither 'data' nor a binary_data_size parameter")
    if offset != len(binary):
        raise invalid(f"request body has {len(binary) - offset} unexpected bytes after the binary input data")
    return header, tensors


def _requested_outputs(header: dict) -> tuple[list[str], dict[str, bool]]:
    default_binary = bool((header.get("parameters") or {}).get("binary_data_output", False))
    names, binary = [], {}
    for item in header.get("outputs") or []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise invalid("each requested output needs a 'name'")
        params = item.get("parameters") or {}
        if params.get("classification"):
            raise InferenceError("unsupported", "the classification extension is not supported by this service")
        names.append(item["name"])
        binary[item["name"]] = bool(params.get("binary_data", default_binary))
    return names, {"*": default_binary, **binary}


def build_infer_response(model: str, version: int, request_id: str | None, outputs: list[Tensor],
                         binary: dict[str, bool]) -> tuple[bytes, int | None]:
    items, chunks = [], []
    for t in outputs:
        item: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": t.shape}
        if binary.get(t.name, binary["*"]):
            data = t.data if t.data.flags.c_contiguous else t.data.copy()
            chunks.append(memoryview(data).cast("B"))
            item["parameters"] = {"binary_data_size": data.nbytes}
        else:
            item["data"] = t.data.reshape(-1).tolist()
        items.append(item)
    response: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": items}
    if request_id:
        response["id"] = request_id
    head = json.dumps(response, separators=(",", ":")).encode()
    return [head, *chunks], (len(head) if chunks else None)


class _PartsResponse:
    """An ASGI response sent as its parts (JSON header, then each output's buffer): the
    multi-MB output arrays go to the socket without being joined into one bytes object."""

    def __init__(self, parts: list, media_type: str, headers: dict[str, str]) -> None:
        self.parts = [p for p in parts if len(p)]
        length = sum(len(p) for p in self.parts)
        self.headers = [(b"content-type", media_type.encode()), (b"content-length", str(length).encode())]
        self.headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        if not self.parts:
            await send({"type": "http.response.body", "body": b""})
        for i, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(self.parts) - 1})


def create_app(registry: ModelRegistry, is_ready=lambda: True) -> Starlette:
    async def live(_: Request) -> Response:
        return Response(status_code=200)

    async def ready(_: Request) -> Response:
        return _ok_or_400(is_ready())

    async def server_meta(_: Request) -> Response:
        return JSONResponse(server_metadata())

    def _model(request: Request):
        p = request.path_params
        return registry.get(p["model"], p.get("version", ""))

    async def model_meta(request: Request) -> Response:
        try:
            loaded, _ = _model(request)
        except InferenceError as e:
            return _error(e)
        version = request.path_params.get("version")
        return JSONResponse(model_metadata(loaded, int(version) if version else None))

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        return _ok_or_400(registry.is_ready(p["model"], p.get("version", "")))

    async def model_config(request: Request) -> Response:
        try:
            loaded, _ = _model(request)
        except InferenceError as e:
            return _error(e)
        return JSONResponse(config_to_json(loaded.info.config))

    async def infer(request: Request) -> Response:
        p = request.path_params
        try:
            body = _decompress(await request.body(), request.headers.get("content-encoding"))
            header, tensors = parse_infer_request(body, request.headers.get(HEADER_LENGTH))
            names, binary = _requested_outputs(header)
            version, outputs = await to_thread.run_sync(
                registry.infer, p["model"], p.get("version", ""), tensors, names or None)
            parts, hlen = build_infer_response(p["model"], version, header.get("id"), outputs, binary)
        except InferenceError as e:
            return _error(e)
        headers = {}
        if hlen is not None:
            headers[HEADER_LENGTH] = str(hlen)
        accept = request.headers.get("accept-encoding", "")
        for encoding, compress in (("gzip", _gzip_fast), ("deflate", _deflate_fast)):
            if encoding in accept:
                # Level 1 off the event loop: general HTTP clients ask for gzip by default, and
                # tensors barely compress; speed matters more than the last few percent.
                parts = [await to_thread.run_sync(compress, b"".join(parts))]
                headers["Content-Encoding"] = encoding
                break
        media = "application/octet-stream" if hlen is not None else "application/json"
        return _PartsResponse(parts, media, headers)

    async def repository_index(request: Request) -> Response:
        try:
            body = _json(await request.body(), "request")
        except InferenceError as e:
            return _error(e)
        ready_only = bool(body.get("ready", False)) if isinstance(body, dict) else False
        return JSONResponse(await to_thread.run_sync(registry.index, ready_only))

    async def repository_load(request: Request) -> Response:
        name = request.path_params["model"]
        try:
            body = _json(await request.body(), "request")
            params = (body.get("parameters") or {}) if isinstance(body, dict) else {}
            await to_thread.run_sync(registry.load_request, name, params)
        except InferenceError as e:
            return _error(e)
        return Response(status_code=200)

    async def repository_unload(request: Request) -> Response:
        try:
            await to_thread.run_sync(registry.unload, request.path_params["model"])
        except InferenceError as e:
            return _error(e)
        return Response(status_code=200)

    async def statistics(_: Request) -> Response:
        return _error(InferenceError("unsupported", "the statistics extension is not supported by this service"))

    routes = [
        Route("/v2/models/stats", statistics), Route("/v2/models/{model}/stats", statistics),
        Route("/v2/models/{model}/versions/{version}/stats", statistics),
        Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server_meta),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{model}/load", repository_load, methods=["POST"]),
        Route("/v2/repository/models/{model}/unload", repository_unload, methods=["POST"]),
    ]
    for base in ("/v2/models/{model}", "/v2/models/{model}/versions/{version}"):
        routes += [
            Route(base, model_meta), Route(base + "/ready", model_ready), Route(base + "/config", model_config),
            Route(base + "/infer", infer, methods=["POST"]),
        ]

    async def not_found(request: Request, exc) -> Response:
        status = getattr(exc, "status_code", 404)
        return JSONResponse({"error": f"{request.method} {request.url.path}: not found"}, status_code=status)

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
