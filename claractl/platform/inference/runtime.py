"""Loaded models and inference: one ONNX Runtime session per loaded model version.

Explicit model control as in Triton: nothing is loaded until `load()` is called; the repository
root is scanned on `index()`. ONNX Runtime sessions are thread-safe, so requests run concurrently.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OrtFail, InvalidArgument as OrtInvalidArgument
from tritonclient.grpc import model_config_pb2 as mc

from claractl.platform.inference.datatypes import numpy_dtype, wire_name
from claractl.platform.inference.errors import InferenceError, invalid, not_found, unavailable
from claractl.platform.inference.repository import ModelConfigError, ModelInfo, config_from_json, load_model_dir

log = logging.getLogger(__name__)


@dataclass
class Tensor:
    """A request/response tensor: name, wire datatype, shape, data (numpy)."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | None = None


@dataclass
class LoadedModel:
    info: ModelInfo
    sessions: dict[int, ort.InferenceSession]
    inputs: dict[str, mc.ModelInput] = field(default_factory=dict)
    outputs: dict[str, mc.ModelOutput] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs = {t.name: t for t in self.info.config.input}
        self.outputs = {t.name: t for t in self.info.config.output}


def providers_for(config: mc.ModelConfig) -> list[str]:
    """CUDA when ONNX Runtime has it and the config does not pin the model to CPU."""
    cpu_only = any(g.kind == mc.ModelInstanceGroup.KIND_CPU for g in config.instance_group)
    if not cpu_only and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _full_dims(info: ModelInfo, tensor) -> list[int]:
    return ([-1] if info.config.max_batch_size > 0 else []) + list(tensor.dims)


class ModelRegistry:
    def __init__(self, repository: str | Path) -> None:
        self.repository = Path(repository)
        self._loaded: dict[str, LoadedModel] = {}
        self._failed: dict[str, str] = {}           # name → reason of the last failed load
        self._lock = threading.Lock()               # guards the dicts; loads run outside it
        self._load_locks: dict[str, threading.Lock] = {}

    # --- repository API -------------------------------------------------------------------
    def load(self, name: str, config_override: mc.ModelConfig | None = None) -> LoadedModel:
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            model_dir = self.repository / name
            if not _safe_name(name) or not model_dir.is_dir():
                raise not_found(f"failed to load '{name}', failed to poll from model repository: "
                                f"no model directory '{name}' in {self.repository}")
            try:
                info = load_model_dir(model_dir, config_override=config_override)
                sessions = {v: self._session(info, v) for v in info.versions}
            except ModelConfigError as e:
                self._record_failure(name, str(e))
                raise invalid(f"failed to load '{name}': {e}") from None
            except Exception as e:  # noqa: BLE001 - ONNX Runtime raises many types; report, don't crash
                self._record_failure(name, str(e))
                raise invalid(f"failed to load '{name}': {e}") from None
            loaded = LoadedModel(info, sessions)
            with self._lock:
                self._loaded[name] = loaded            # replaces the old one atomically (reload)
                self._failed.pop(name, None)
            log.info("loaded model %s versions %s (%s)", name, info.versions, info.digest)
            return loaded

    def load_request(self, name: str, parameters: dict) -> LoadedModel:
        """A repository load request (HTTP or gRPC): optional `config` parameter overrides config.pbtxt."""
        if any(k.startswith("file:") for k in parameters):
            raise InferenceError("unsupported", "loading a model from 'file:' parameters is not supported; "
                                                "put the model directory into the repository")
        override = None
        if parameters.get("config"):
            try:
                override = config_from_json(parameters["config"], file=f"load request config of '{name}'")
            except ModelConfigError as e:
                raise invalid(str(e)) from None
        return self.load(name, override)

    def unload(self, name: str) -> None:
        with self._lock:
            if name not in self._loaded and not (_safe_name(name) and (self.repository / name).is_dir()):
                raise not_found(f"failed to unload '{name}': model not found in the repository")
            self._loaded.pop(name, None)
            self._failed.pop(name, None)

    def index(self, ready_only: bool = False) -> list[dict]:
        names = sorted({p.name for p in self.repository.iterdir() if p.is_dir()} if self.repository.is_dir() else set())
        with self._lock:
            names = sorted(set(names) | set(self._loaded))
            rows = []
            for name in names:
                loaded = self._loaded.get(name)
                if loaded:
                    rows += [{"name": name, "version": str(v), "state": "READY", "reason": ""}
                             for v in loaded.info.versions]
                elif not ready_only:
                    reason = self._failed.get(name, "unloaded")
                    rows.append({"name": name, "version": "", "state": "UNAVAILABLE", "reason": reason})
        return rows

    def loaded_names(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)

    # --- lookup -----------------------------------------------------------------------------
    def get(self, name: str, version: str = "") -> tuple[LoadedModel, int]:
        with self._lock:
            loaded = self._loaded.get(name)
        if loaded is None:
            if _safe_name(name) and (self.repository / name).is_dir():
                raise unavailable(f"Request for unknown model: '{name}' has no available versions")
            raise not_found(f"Request for unknown model: '{name}' is not found")
        if version in ("", None):
            return loaded, max(loaded.sessions)
        try:
            v = int(version)
        except ValueError:
            raise invalid(f"failed to parse model version '{version}' of '{name}'") from None
        if v not in loaded.sessions:
            raise not_found(f"Request for unknown model: '{name}' version {v} is not found")
        return loaded, v

    def is_ready(self, name: str, version: str = "") -> bool:
        try:
            self.get(name, version)
            return True
        except InferenceError:
            return False

    # --- inference --------------------------------------------------------------------------
    def infer(self, name: str, version: str, inputs: list[Tensor], requested: list[str] | None) -> tuple[int, list[Tensor]]:
        loaded, v = self.get(name, version)
        feed = self._validated_feed(loaded, name, inputs)
        if requested:
            for out in requested:
                if out not in loaded.outputs:
                    raise invalid(f"unexpected inference output '{out}' for model '{name}'")
            names = list(requested)
        else:
            names = list(loaded.outputs)
        try:
            results = loaded.sessions[v].run(names, feed)
        except (OrtInvalidArgument, OrtFail) as e:
            raise invalid(f"onnx runtime error for model '{name}': {e}") from None
        outputs = []
        for out_name, array in zip(names, results):
            array = np.asarray(array)
            cfg = loaded.outputs[out_name]
            if cfg.HasField("reshape"):           # model shape → the shape the config exposes
                batch = [array.shape[0]] if loaded.info.config.max_batch_size > 0 else []
                array = array.reshape(batch + list(cfg.dims))
            outputs.append(Tensor(out_name, wire_name(mc.DataType.Name(cfg.data_type)), list(array.shape), array))
        return v, outputs

    def _validated_feed(self, loaded: LoadedModel, name: str, inputs: list[Tensor]) -> dict[str, np.ndarray]:
        config = loaded.info.config
        feed: dict[str, np.ndarray] = {}
        for t in inputs:
            cfg = loaded.inputs.get(t.name)
            if cfg is None:
                raise invalid(f"unexpected inference input '{t.name}' for model '{name}'")
            expected = wire_name(mc.DataType.Name(cfg.data_type))
            if t.datatype != expected:
                raise invalid(f"inference input '{t.name}' data-type is '{t.datatype}', but model '{name}' expects '{expected}'")
            dims = _full_dims(loaded.info, cfg)
            if len(t.shape) != len(dims) or any(d != -1 and d != s for d, s in zip(dims, t.shape)):
                raise invalid(f"unexpected shape for input '{t.name}' for model '{name}'. "
                              f"Expected [{','.join(map(str, dims))}], got [{','.join(map(str, t.shape))}]")
            if config.max_batch_size > 0 and t.shape and t.shape[0] > config.max_batch_size:
                raise invalid(f"inference request batch-size must be <= {config.max_batch_size} for '{name}'")
            array = t.data
            if cfg.HasField("reshape"):
                batch = t.shape[:1] if config.max_batch_size > 0 else []
                array = array.reshape(batch + list(cfg.reshape.shape))
            feed[t.name] = array
        missing = [n for n, cfg in loaded.inputs.items() if n not in feed and not cfg.optional]
        if missing:
            raise invalid(f"expected {len(loaded.inputs)} inputs but got {len(feed)} inputs for model '{name}'. "
                          f"Got input(s) {sorted(feed)}, but missing required input(s) {missing}. "
                          "Please provide all required input(s).")
        return feed

    # --- helpers ----------------------------------------------------------------------------
    def _session(self, info: ModelInfo, version: int) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle intra-op threads must not spin: they would steal the CPU the request/response
        # handling (and, on a shared host, the operators) need between runs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(info.model_files[version]), sess_options=options,
                                    providers=providers_for(info.config))

    def _record_failure(self, name: str, reason: str) -> None:
        with self._lock:                              # as Triton: a failed reload keeps the loaded model serving
            self._failed[name] = reason


def _safe_name(name: str) -> bool:
    """A model name is one folder under the repository: no separators, no dot-dirs."""
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def tensor_from_bytes(name: str, datatype: str, shape: list[int], raw: bytes | memoryview) -> Tensor:
    """Raw little-endian tensor bytes (binary extension / gRPC raw contents) → Tensor, no copy."""
    dtype = numpy_dtype(datatype)
    if dtype is None:
        raise InferenceError("unsupported", f"input '{name}': datatype '{datatype}' is not supported by this service")
    count = int(np.prod(shape)) if shape else 1
    if any(s < 0 for s in shape):
        raise invalid(f"input '{name}' has a negative dimension in shape {shape}")
    if len(raw) != count * dtype.itemsize:
        raise invalid(f"input '{name}' got unexpected byte size {len(raw)}, expected {count * dtype.itemsize} "
                      f"(shape {shape}, {datatype})")
    return Tensor(name, datatype, list(shape), np.frombuffer(raw, dtype=dtype).reshape(shape))


def tensor_from_list(name: str, datatype: str, shape: list[int], data) -> Tensor:
    dtype = numpy_dtype(datatype)
    if dtype is None:
        raise InferenceError("unsupported", f"input '{name}': datatype '{datatype}' is not supported by this service")
    try:
        array = np.asarray(data, dtype=dtype).reshape(-1)
    except (TypeError, ValueError) as e:
        raise invalid(f"unable to parse 'data' of input '{name}' as {datatype}: {e}") from None
    count = int(np.prod(shape)) if shape else 1
    if array.size != count:
        raise invalid(f"unexpected number of elements for input '{name}': got {array.size}, "
                      f"shape {shape} needs {count}")
    return Tensor(name, datatype, list(shape), array.reshape(shape))
