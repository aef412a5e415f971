"""Models (NVIDIA's ModelsClient where its calls work, its ModelsStub for the rest — see
docs/clara-api.md for the 0.8.1.7 client's broken model calls) and the Clara service: version,
utilization, stop; the platform token as call metadata off loopback."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.clara_api.support import start_platform
from tests.plan.projects import write_model

STUB_PREAMBLE = '''
from nvidia_clara.grpc import models_pb2, models_pb2_grpc, common_pb2
import grpc
stub = models_pb2_grpc.ModelsStub(grpc.insecure_channel(f"{{ip}}:{{port}}"))
'''


def zipped(model_dir) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(model_dir.rglob("*")):
            if p.is_file():
                zf.write(p, f"{model_dir.name}/{p.relative_to(model_dir).as_posix()}")
    return buf.getvalue()


def test_models_upload_list_catalogs_instances_download_delete(clara, tmp_path):
    archive = tmp_path / "tiny.zip"
    archive.write_bytes(zipped(write_model(tmp_path, "tiny")))
    result = clara.run(STUB_PREAMBLE + '''
data = open("{archive}", "rb").read()
chunks = [models_pb2.ModelsUploadModelRequest(details=models_pb2.ModelDetails(name="tiny"), data=data[i:i + 65536])
          for i in range(0, len(data), 65536)]
uploaded = stub.UploadModel(iter(chunks))
listed = [(m.name, m.model_id.value, m.type) for r in stub.ListModels(models_pb2.ModelsListModelsRequest()) for m in r.models]
model_id = model_types.ModelId(uploaded.details.model_id.value)
catalog = models.create_catalog()
# ModelsClient.update_catalog hands grpcio a list where it needs an iterator: through its stub.
stub.UpdateCatalog(iter([models_pb2.ModelsUpdateCatalogRequest(catalog_id=catalog.to_grpc_value(),
                                                               model_ids=[model_id.to_grpc_value()])]))
catalogs = [(c.catalog_id.value, [m.name for m in c.models])
            for r in stub.ListCatalogs(models_pb2.ModelsListCatalogsRequest()) for c in r.catalogs]
instance = models.create_instance()
read = [m.name for r in stub.ReadCatalog(models_pb2.ModelsReadCatalogRequest(catalog_id=catalog.to_grpc_value()))
        for m in r.models]
zip_back = b"".join(r.data for r in stub.DownloadModel(models_pb2.ModelsDownloadModelRequest(model_id=model_id.to_grpc_value())))
meta = dict(models.add_metadata(model_id=model_id, metadata={{"owner": "radiology", "site": "north"}}))
meta_left = dict(models.remove_metadata(model_id=model_id, keys=["site"]))
bad = stub.UploadModel(iter([models_pb2.ModelsUploadModelRequest(details=models_pb2.ModelDetails(name="broken"),
                                                                  data=b"not a zip")])).header
stub.DeleteInstance(models_pb2.ModelsDeleteInstanceRequest(instance_id=instance.to_grpc_value()))  # client: bug
models.delete_catalog(catalog_id=catalog)
def delete_model():   # ModelsClient.delete_model fills the wrong field (catalog_id): through its stub
    header = stub.DeleteModel(models_pb2.ModelsDeleteModelRequest(model_id=model_id.to_grpc_value())).header
    if header.code < 0:
        raise Exception(" / ".join(header.messages))
delete_model()
out(dict(uploaded=[uploaded.header.code, uploaded.details.name, uploaded.details.model_id.value], listed=listed,
         catalog=catalog.value, catalogs=catalogs, instance=instance.value, read=read, zip=zip_back.hex(), meta=meta,
         bad=[bad.code, list(bad.messages)], meta_left=meta_left,
         gone=error(delete_model),
         no_catalog=error(models.delete_catalog, catalog_id=catalog)))
''', archive=archive)
    code, name, model_id = result["uploaded"]
    assert (code, name, len(model_id)) == (0, "tiny", 32)
    assert result["listed"] == [["tiny", model_id, 0]]                    # ONNX: Clara has no type for it
    assert [c for c in result["catalogs"] if c[0] == result["catalog"]] == [[result["catalog"], ["tiny"]]]
    assert result["read"] == ["tiny"]
    with zipfile.ZipFile(io.BytesIO(bytes.fromhex(result["zip"]))) as zf:
        assert sorted(zf.namelist()) == ["tiny/1/model.onnx", "tiny/config.pbtxt"]
        assert zf.read("tiny/config.pbtxt") == (tmp_path / "models/tiny/config.pbtxt").read_bytes()
    assert result["meta"] == {"owner": "radiology", "site": "north"} and result["meta_left"] == {"owner": "radiology"}
    assert result["bad"][0] == -0x4100 and "not a readable tar.gz or zip archive" in result["bad"][1][0]
    assert result["gone"] == f"Exception: model '{model_id}' not found"
    assert result["no_catalog"] == f"Exception: catalog '{result['catalog']}' not found"
    assert "tiny" not in [m["name"] for m in clara.rest.list_models()]


def test_version_and_utilization(clara):
    result = clara.run('''
version = clara.version()
util = clara.list_utilization()
from nvidia_clara.grpc import clara_pb2, clara_pb2_grpc
import grpc
responses = clara_pb2_grpc.ClaraStub(grpc.insecure_channel(f"{{ip}}:{{port}}")).Utilization(clara_pb2.ClaraUtilizationRequest())
list(responses)
out(dict(version=[version.major, version.minor, version.patch, version.label], gpus=len(util[0].gpu_metrics),
         trailing=dict(responses.trailing_metadata())))
''')
    assert result["version"][:3] == [0, 8, 1] and result["version"][3].startswith("claractl ")
    assert result["gpus"] == 0                      # this machine has no NVIDIA GPU (no nvidia-smi)
    assert set(result["trailing"]) == {"clara-cpu-percent", "clara-memory-used-bytes", "clara-memory-total-bytes"}
    assert 0 < int(result["trailing"]["clara-memory-used-bytes"]) < int(result["trailing"]["clara-memory-total-bytes"])
    rest = clara.rest._json("GET", "/api/v1/utilization")
    assert rest["gpus"] == [] and rest["memory"]["total"] == int(result["trailing"]["clara-memory-total-bytes"])


def test_off_loopback_writes_need_the_token_as_call_metadata(tmp_path):
    running = start_platform(tmp_path / "state", host="0.0.0.0")
    try:
        result = running.run('''
from nvidia_clara.grpc import payloads_pb2_grpc
import collections, grpc

class Details(collections.namedtuple("Details", "method timeout metadata credentials wait_for_ready compression"),
              grpc.ClientCallDetails):
    pass

class Token(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Adds the platform token to every call (NVIDIA's clients take a ready stub)."""
    def _with_token(self, d):
        return Details(d.method, d.timeout, list(d.metadata or []) + [("authorization", "Bearer {token}")],
                       d.credentials, d.wait_for_ready, d.compression)
    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)
    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)

channel = grpc.intercept_channel(grpc.insecure_channel(f"{{ip}}:{{port}}"), Token())
with_token = PayloadsClient(target=ip, port=port, stub=payloads_pb2_grpc.PayloadsStub(channel))
denied = error(payloads.create_payload)
allowed = with_token.create_payload().payload_id.value
read = [p.name for p in pipelines.list_pipelines()]
out(dict(denied=denied, allowed=allowed, read=read))
''', token=running.platform.token)
    finally:
        running.stop()
    assert "StatusCode.UNAUTHENTICATED" in result["denied"]
    assert "a valid platform token is required for this call" in result["denied"]
    assert len(result["allowed"]) == 32 and result["read"] == []


def test_stop_ends_the_platform(tmp_path):
    running = start_platform(tmp_path / "state")
    try:
        result = running.run('clara.stop(); out("stopped")')
        assert result == "stopped"
        running.platform._thread.join(20)
        assert not running.platform._thread.is_alive()
        try:
            httpx.get(running.config.api_url + "/health/live", timeout=2)
            reachable = True
        except httpx.HTTPError:
            reachable = False
        assert not reachable
    finally:
        running.stop()
