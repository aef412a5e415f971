"""What an operation needs: config, store, the engine to wake, the inference hook, components."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from claractl.platform.config import PlatformConfig
from claractl.platform.engine.inference_hook import InferenceHook
from claractl.platform.store import Store


@dataclass
class Context:
    config: PlatformConfig
    store: Store
    hook: InferenceHook
    engine: Any = None                                     # has wake() and status()
    components: dict[str, Any] = field(default_factory=dict)   # name → component (status())
    reload: Callable[[], dict[str, Any]] | None = None    # apply changed settings (Platform.reload)
    stop_platform: Callable[[], None] | None = None       # end the platform process (Clara.Stop)

    def wake_engine(self) -> None:
        if self.engine is not None:
            self.engine.wake()
