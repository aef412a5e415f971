"""Settings of one running platform, as the local target writes them and `platform serve` reads them.

The file is `<state-dir>/platform.json` (or given with `--config`). Every component takes its
settings from here; the local target compares the running settings (GET /api/v1/config) with the
project's to decide which components to restart.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from claractl.platform.errors import PlatformError

DEFAULT_STATE_DIR = ".clara"
CONFIG_FILE = "platform.json"
TOKEN_FILE = "api-token"                 # written 0600 by the server when it binds beyond loopback without one


@dataclass
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    workers: int = 2                     # engine worker slots (concurrent jobs at most)
    token: str | None = None             # bearer token for writes; also CLARA_API_TOKEN; never logged
    grpc_port: int | None = None         # Clara Platform API (gRPC) on host:grpc_port; None = off (projects: 50051)


@dataclass
class StoreSettings:
    database: str = "sqlite"             # "sqlite" → <state-dir>/clara.db, or a SQLAlchemy URL


@dataclass
class EngineSettings:
    cpu: float = 0.0                     # capacity in cores; 0 = os.cpu_count()
    memory: int = 0                      # capacity in MB; 0 = physical memory
    gpu: int = 0                         # capacity in GPUs
    job_timeout: float = 600.0           # seconds
    payload_retention: float = 86400.0   # seconds after all export tasks of a job finished
    executor: str = "local"              # local | kubernetes
    service_idle: float = 60.0           # seconds a PDL service nobody uses keeps running (engine/services.py)


@dataclass
class DicomSettings:
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 11112
    ae_title: str = "CLARA"
    max_associations: int = 25
    reject_unknown_sources: bool = True
    watermark_percent: float = 85.0      # refuse instances when the disk is fuller than this
    reserve_mb: int = 0                  # … or has fewer free MB than this
    overwrite_duplicates: bool = True
    spool_segment_mb: int = 64           # receive spool segment size (docs/dicom.md "Durability")
    network_timeout: float = 60.0        # s an association may stay silent before it is aborted
    # DICOM over TLS (docs/dicom.md "TLS"): a second listener, and exports to destinations with tls.
    tls_port: int = 0                    # the TLS listener's port (0: none)
    tls_certificate: str = ""            # PEM: our certificate (chain), also the client certificate of exports
    tls_private_key: str = ""            # PEM: its private key
    tls_private_key_password: str | None = None   # never logged; redacted in GET /config
    tls_ca_certificates: str = ""        # PEM bundle: verifies client certificates and TLS destinations
    tls_verify_clients: bool = False     # require a client certificate signed by tls_ca_certificates
    drain_seconds: float = 0.0           # at stop: s to let accepted associations finish (new ones refused); 0 = abort them


@dataclass
class InferenceSettings:
    enabled: bool = True
    host: str = "127.0.0.1"
    http_port: int = 8000
    grpc_port: int = 8001
    url: str | None = None               # external Triton (kubernetes); None = embedded service


@dataclass
class RenderSettings:
    enabled: bool = True
    port: int = 8080


@dataclass
class AuditSettings:
    """The audit trail (always in the store) sent on as DICOM audit messages over syslog (docs/operations.md)."""
    syslog: str = ""                     # "tcp://HOST:PORT" or "tls://HOST:PORT"; empty: not sent
    syslog_ca_certificates: str = ""     # PEM: verifies the repository (default: the system's CAs)
    syslog_certificate: str = ""         # PEM: our client certificate, when the repository asks for one
    syslog_private_key: str = ""
    source_id: str = ""                  # AuditSourceID (default claractl@<hostname>)
    site_id: str = ""                    # AuditEnterpriseSiteID


@dataclass
class ClusterSettings:
    """Several platform processes sharing one state volume and one PostgreSQL store (the
    kubernetes target's high availability, docs/kubernetes.md). Off: one process owns it all."""
    shared_state: bool = False           # other processes use this state dir too (per-replica DICOM dirs)
    leader_election: bool = False        # the engine (and DICOM export) run only while holding the Lease
    lease_name: str = "clara-engine"     # coordination.k8s.io Lease in CLARA_K8S_NAMESPACE
    lease_seconds: float = 15.0          # a dead leader's lease expires after this long
    replica: str = ""                    # this process's name (the pod's; `platform serve --replica`)


@dataclass
class PlatformConfig:
    state_dir: str = DEFAULT_STATE_DIR
    api: ApiSettings = field(default_factory=ApiSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    dicom: DicomSettings = field(default_factory=DicomSettings)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)

    # Derived locations under the state dir.
    @property
    def root(self) -> Path:
        return Path(self.state_dir).resolve()

    @property
    def payloads_dir(self) -> Path:
        return self.root / "payloads"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def dicom_dir(self) -> Path:
        """Where the DICOM adapter keeps open groups until they become job payloads."""
        return self.root / "dicom"

    @property
    def database_url(self) -> str:
        # On kubernetes the URL comes from a Secret as CLARA_DATABASE_URL, never from the ConfigMap.
        if os.environ.get("CLARA_DATABASE_URL"):
            return os.environ["CLARA_DATABASE_URL"]
        if self.store.database == "sqlite":
            return f"sqlite:///{self.root / 'clara.db'}"
        return self.store.database

    @property
    def api_url(self) -> str:
        host = "127.0.0.1" if self.api.host in ("0.0.0.0", "::") else self.api.host
        return f"http://{host}:{self.api.port}"

    @property
    def api_token(self) -> str | None:
        return os.environ.get("CLARA_API_TOKEN") or self.api.token

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if redact and data["api"]["token"]:
            data["api"]["token"] = "(sensitive)"
        if redact and data["dicom"]["tls_private_key_password"]:
            data["dicom"]["tls_private_key_password"] = "(sensitive)"
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlatformConfig":
        sections = {f.name: f.type for f in fields(cls) if f.name != "state_dir"}
        kwargs: dict[str, Any] = {"state_dir": data.get("state_dir", DEFAULT_STATE_DIR)}
        for name in sections:
            section_cls = {
                "api": ApiSettings, "store": StoreSettings, "engine": EngineSettings,
                "dicom": DicomSettings, "inference": InferenceSettings, "render": RenderSettings,
                "cluster": ClusterSettings, "audit": AuditSettings,
            }[name]
            kwargs[name] = section_cls(**data.get(name, {}))
        return cls(**kwargs)

    @classmethod
    def load(cls, state_dir: str | os.PathLike[str]) -> "PlatformConfig":
        """Read `<state_dir>/platform.json`; defaults when it does not exist yet."""
        path = Path(state_dir) / CONFIG_FILE
        if not path.exists():
            return cls(state_dir=str(Path(state_dir).resolve()))
        data = json.loads(path.read_text())
        data["state_dir"] = str(Path(state_dir).resolve())
        return cls.from_dict(data)

    def save(self) -> Path:
        """Write atomically (temp file + rename) so a crash never leaves half a config."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / CONFIG_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(redact=False), indent=2, sort_keys=True))
        os.replace(tmp, path)
        return path


def load_config(state_dir: str | os.PathLike[str], config_file: str | None = None) -> PlatformConfig:
    """The settings in `config_file` (JSON) for `state_dir`, or `<state_dir>/platform.json`."""
    if not config_file:
        return PlatformConfig.load(state_dir)
    try:
        data = json.loads(Path(config_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PlatformError(f"cannot read platform config {config_file}: {exc}") from exc
    data["state_dir"] = str(Path(state_dir).resolve())
    try:
        return PlatformConfig.from_dict(data)
    except TypeError as exc:
        raise PlatformError(f"{config_file}: {exc}") from exc


def read_token(config: PlatformConfig) -> str | None:
    """The API token a client on this machine sends: CLARA_API_TOKEN, the config's, or the state dir's file."""
    if config.api_token:
        return config.api_token
    path = config.root / TOKEN_FILE
    return path.read_text().strip() if path.exists() else None
