"""Which operators are bundled: image `claractl/<name>` (or none) runs as a process of the platform's
own interpreter; any other image needs a container runtime (podman or docker).

Kept apart from the engine so the local target can ask at plan time without loading the engine.
"""

from __future__ import annotations

from typing import Any

BUNDLED_PREFIX = "claractl/"


def is_bundled(operator: dict[str, Any]) -> bool:
    image = (operator.get("container") or {}).get("image")
    return not image or str(image).startswith(BUNDLED_PREFIX)
