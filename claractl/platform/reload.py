"""Which parts of a running platform a settings change touches (POST /api/v1/config/reload).

    effect = reload_effect(running_config, new_config)
    effect.restart_process   # keys only a full process restart can apply (API address, database)
    effect.components        # optional components to stop and start again ("dicom", ...)
    effect.engine            # engine keys applied in place (running jobs keep going)

Both the platform (to act) and the local target (to say in the plan what will restart) use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from claractl.platform.config import PlatformConfig

# Settings the process binds or opens once: the API socket, the store, the executor kind.
PROCESS_KEYS = {"api.host", "api.port", "store.database", "engine.executor",
                # the audit forwarder runs beside the engine (leader-elected where there are several)
                "audit.syslog", "audit.syslog_ca_certificates", "audit.syslog_certificate",
                "audit.syslog_private_key", "audit.source_id", "audit.site_id"}
# Applied to the live engine: new admissions use them, running jobs keep theirs.
ENGINE_KEYS = {"api.workers", "engine.cpu", "engine.memory", "engine.gpu", "engine.job_timeout",
               "engine.payload_retention", "engine.service_idle"}
# Component → the settings sections it is built from. The render service checks the API token.
COMPONENT_KEYS = {
    "inference": ("inference.",),
    "dicom": ("dicom.",),
    "render": ("render.", "api.token"),
    "clara-api": ("api.grpc_port", "api.token"),
}
# How components are called to users (project-file service names where there is one).
DISPLAY = {"dicom": "dicom-adapter", "inference": "inference", "render": "render", "engine": "engine",
           "clara-api": "clara-api"}
# The platform's start order; stop goes in reverse.
START_ORDER = ("inference", "engine", "dicom", "render", "clara-api")


@dataclass
class ReloadEffect:
    changed: list[str] = field(default_factory=list)          # dotted keys ("dicom.port")
    restart_process: list[str] = field(default_factory=list)  # subset of changed
    components: list[str] = field(default_factory=list)       # in START_ORDER
    engine: list[str] = field(default_factory=list)           # engine keys changed

    @property
    def nothing(self) -> bool:
        return not self.changed

    def describe(self) -> str:
        """One phrase for plans and logs: what applying this does to the running platform."""
        if self.restart_process:
            return "restarts the platform process (" + ", ".join(self.restart_process) + ")"
        parts = []
        if self.components:
            parts.append("restarts: " + ", ".join(DISPLAY[c] for c in self.components))
        if self.engine:
            parts.append("engine reconfigured in place")
        if self.changed and not parts:
            parts.append("API reconfigured in place")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _flat(config: PlatformConfig) -> dict[str, Any]:
    data = config.to_dict(redact=False)
    return {f"{section}.{key}": value for section, values in data.items() if isinstance(values, dict)
            for key, value in values.items()}


def changed_keys(old: PlatformConfig, new: PlatformConfig) -> list[str]:
    a, b = _flat(old), _flat(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def effect_of_keys(keys: list[str]) -> ReloadEffect:
    effect = ReloadEffect(changed=sorted(keys))
    effect.restart_process = [k for k in effect.changed if k in PROCESS_KEYS]
    effect.engine = [k for k in effect.changed if k in ENGINE_KEYS]
    touched = {c for c, prefixes in COMPONENT_KEYS.items()
               for k in effect.changed for p in prefixes if k == p or (p.endswith(".") and k.startswith(p))}
    effect.components = [c for c in START_ORDER if c in touched]
    return effect


def reload_effect(old: PlatformConfig, new: PlatformConfig) -> ReloadEffect:
    return effect_of_keys(changed_keys(old, new))
