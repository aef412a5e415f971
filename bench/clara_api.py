"""The Clara Platform API (gRPC) against the HTTP API, same platform, same run.

Prints:
- latency of `Jobs.Status` vs `GET /api/v1/jobs/{id}` and `Pipelines.List` vs `GET /api/v1/pipelines`
  (median and p95 of N calls each, default 1000, one client connection kept open);
- payload transfer in MB/s for one file (default 64 MB): upload through `Payloads.Upload`
  (64 KiB messages, as NVIDIA's client sends them) vs `PUT …/files/…` vs copying the file on the
  same disk with fsync (the baseline: what storing it costs without any API); download through
  `Payloads.Download` vs `GET …/files/…` vs copying it back.

The gRPC calls are made with grpcio and the message classes claractl builds from NVIDIA's
descriptors (the same bytes on the wire as nvidia-clara-client sends, without its slow
pure-protobuf-3 runtime; docs/clara-api.md).

    python bench/clara_api.py [--calls 1000] [--mb 64] [--pipelines 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import httpx

from claractl.platform.clara_api.protos import message as M
from claractl.platform.config import PlatformConfig
from claractl.platform.server import Platform
from common import free_port  # noqa: E402

NOOP = "api-version: 0.4.0\nname: {name}\noperators:\n- name: a\n  container: {{image: claractl/a, command: [python, -c, '1']}}\n"
UPLOAD_CHUNK = 64 * 1024            # nvidia_clara.PayloadsClient.upload's chunk size


def grpc_call(channel: grpc.Channel, service: str, method: str, response: str, streaming: bool = False):
    path = f"/nvidia.clara.platform.{service}/{method}"
    make = channel.unary_stream if streaming else channel.unary_unary
    return make(path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=M(response).FromString)


def timed(fn, calls: int) -> list[float]:
    fn()                                   # warm the connection
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples: list[float]) -> str:
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"median {statistics.median(samples):7.3f} ms   p95 {p95:7.3f} ms"


def mb_per_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:8.1f} MB/s  ({seconds:6.3f} s)"


def copy_with_fsync(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    shutil.copyfile(src, dst)
    with open(dst, "rb+") as fh:
        os.fsync(fh.fileno())
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--pipelines", type=int, default=20, help="Pipelines registered (what List returns).")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="clara-api-bench-") as tmp:
        tmp = Path(tmp)
        config = PlatformConfig(state_dir=str(tmp / "state"))
        config.api.port, config.api.grpc_port = free_port(), free_port()
        config.dicom.enabled = config.inference.enabled = config.render.enabled = False
        platform = Platform(config)
        platform.start()
        rest = httpx.Client(base_url=config.api_url + "/api/v1", timeout=300)
        channel = grpc.insecure_channel(f"127.0.0.1:{config.api.grpc_port}",
                                        options=[("grpc.max_receive_message_length", 16 << 20)])
        try:
            for i in range(args.pipelines):
                rest.put(f"/pipelines/p{i}", json={"definition_text": NOOP.format(name=f"p{i}")}).raise_for_status()
            job = rest.post("/jobs", json={"pipeline": "p0"}).json()
            job_id, payload_id = job["id"], rest.post("/payloads", json={}).json()["id"]
            clara_job, clara_payload = job_id.replace("-", ""), payload_id.replace("-", "")

            status = grpc_call(channel, "Jobs", "Status", "JobsStatusResponse")
            listing = grpc_call(channel, "Pipelines", "List", "PipelinesListResponse", streaming=True)
            status_req = M("JobsStatusRequest")(job_id=M("Identifier")(value=clara_job))
            list_req = M("PipelinesListRequest")()
            print(f"latency, {args.calls} calls each ({args.pipelines} pipelines registered)")
            print(f"  Jobs.Status      gRPC  {summary(timed(lambda: status(status_req), args.calls))}")
            print(f"  GET /jobs/{{id}}   REST  {summary(timed(lambda: rest.get(f'/jobs/{job_id}').raise_for_status(), args.calls))}")
            print(f"  Pipelines.List   gRPC  {summary(timed(lambda: list(listing(list_req)), args.calls))}")
            print(f"  GET /pipelines   REST  {summary(timed(lambda: rest.get('/pipelines').raise_for_status(), args.calls))}")

            size = args.mb * 1024 * 1024
            source = tmp / "source.bin"
            with open(source, "wb") as fh:
                for _ in range(args.mb):
                    fh.write(os.urandom(1024 * 1024))
            upload = channel.stream_unary("/nvidia.clara.platform.Payloads/Upload",
                                          request_serializer=lambda m: m.SerializeToString(),
                                          response_deserializer=M("PayloadsUploadResponse").FromString)

            def chunks(name: str):
                details = M("PayloadFileDetails")(name=name)
                ident = M("Identifier")(value=clara_payload)
                with open(source, "rb") as fh:
                    while data := fh.read(UPLOAD_CHUNK):
                        yield M("PayloadsUploadRequest")(payload_id=ident, details=details, data=data)

            def file_chunks():
                with open(source, "rb") as fh:
                    while data := fh.read(1 << 20):
                        yield data

            print(f"payload transfer, one {args.mb} MB file")
            start = time.perf_counter()
            answer = upload(chunks("grpc.bin"))
            t_grpc_up = time.perf_counter() - start
            assert answer.header.code == 0 and answer.details.size == size, answer
            start = time.perf_counter()
            rest.put(f"/payloads/{payload_id}/files/input/rest.bin", content=file_chunks()).raise_for_status()
            t_rest_up = time.perf_counter() - start
            t_copy_up = copy_with_fsync(source, config.payloads_dir / payload_id / "input" / "copy.bin")
            print(f"  upload    gRPC  {mb_per_s(size, t_grpc_up)}")
            print(f"  upload    REST  {mb_per_s(size, t_rest_up)}")
            print(f"  baseline  copy  {mb_per_s(size, t_copy_up)}  (cp + fsync on the same disk)")

            download = grpc_call(channel, "Payloads", "Download", "PayloadsDownloadResponse", streaming=True)
            req = M("PayloadsDownloadRequest")(payload_id=M("Identifier")(value=clara_payload), name="/input/grpc.bin")
            start = time.perf_counter()
            with open(tmp / "down-grpc.bin", "wb") as fh:
                for part in download(req):
                    fh.write(part.data)
            t_grpc_down = time.perf_counter() - start
            start = time.perf_counter()
            with rest.stream("GET", f"/payloads/{payload_id}/files/input/rest.bin") as r, \
                    open(tmp / "down-rest.bin", "wb") as fh:
                for data in r.iter_bytes(1 << 20):
                    fh.write(data)
            t_rest_down = time.perf_counter() - start
            start = time.perf_counter()
            shutil.copyfile(config.payloads_dir / payload_id / "input" / "copy.bin", tmp / "down-copy.bin")
            t_copy_down = time.perf_counter() - start
            for name in ("down-grpc.bin", "down-rest.bin", "down-copy.bin"):
                assert (tmp / name).stat().st_size == size, name
            print(f"  download  gRPC  {mb_per_s(size, t_grpc_down)}")
            print(f"  download  REST  {mb_per_s(size, t_rest_down)}")
            print(f"  baseline  copy  {mb_per_s(size, t_copy_down)}  (cp, page cache)")
        finally:
            channel.close()
            rest.close()
            platform.stop()


if __name__ == "__main__":
    main()
