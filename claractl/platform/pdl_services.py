"""The long-running `services` a Clara pipeline's operators declare (PDL <= 0.6), read without
loading the engine (the local target asks at plan time).

Clara tells services apart by their container (image, tag, command): operators, even of
different jobs, that declare the same one share one running service. A TRTIS/Triton service is
not started: its connections point at the inference service the project declares (Triton on
Kubernetes, the embedded one locally), which serves the project's models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

INFERENCE_IMAGE_MARKERS = ("tensorrtserver", "tritonserver", "trtis", "triton")


@dataclass(frozen=True)
class ServiceDecl:
    name: str                                   # as the operator names it
    image: str
    tag: str
    command: tuple[str, ...]
    variables: tuple[tuple[str, str], ...] = ()
    http: tuple[tuple[str, int, str], ...] = ()        # (env name, port, path)
    volumes: tuple[tuple[str, str], ...] = ()          # (env name, path in the service container)
    requests: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    @property
    def key(self) -> str:
        """Clara's identity of a service (container image, tag, command) plus its variables."""
        raw = json.dumps([self.image, self.tag, self.command, self.variables])
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.tag}" if self.tag else self.image

    @property
    def is_inference(self) -> bool:
        last = self.image.rsplit("/", 1)[-1].lower()
        return any(marker in last for marker in INFERENCE_IMAGE_MARKERS)


def declared(service: dict[str, Any]) -> ServiceDecl:
    container = service.get("container") or {}
    conns = service.get("connections") or {}
    return ServiceDecl(
        name=str(service["name"]), image=str(container.get("image", "")), tag=str(container.get("tag") or ""),
        command=tuple(str(c) for c in container.get("command") or []),
        variables=tuple(sorted((str(k), str(v)) for k, v in (service.get("variables") or {}).items())),
        http=tuple((str(c["name"]), int(c["port"]), str(c.get("path") or "")) for c in conns.get("http") or []),
        volumes=tuple((str(c["name"]), str(c["path"])) for c in conns.get("volume") or []),
        requests=tuple(sorted((service.get("requests") or {}).items())),
    )


def operator_services(definition: dict[str, Any]) -> dict[str, list[ServiceDecl]]:
    """Operator name → the services it declares (operators without services left out)."""
    return {op["name"]: [declared(s) for s in op.get("services") or []]
            for op in definition.get("operators") or [] if op.get("services")}


def inference_mapped(definition: dict[str, Any]) -> list[ServiceDecl]:
    """The Triton/TRTIS services of a pipeline (mapped to the inference service, never started)."""
    return [s for services in operator_services(definition).values() for s in services if s.is_inference]
