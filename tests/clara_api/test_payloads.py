"""Payloads through NVIDIA's PayloadsClient: reusable payloads (create, upload, details, download,
remove a file, metadata, delete), a job's own payload (read-only once started), and two jobs on one
payload that each keep their own outputs."""

from __future__ import annotations

from tests.clara_api.support import COPY_PIPELINE as COPY


def test_reusable_payload_files_and_metadata(clara, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 12000)            # ~3 MB: several upload and download chunks
    result = clara.run('''
created = payloads.create_payload(metadata={{"source": "pacs"}})
pid = created.payload_id
with open("{big}", "rb") as fh:
    up = payloads.upload(payload_id=pid, blob_name="./series/big.bin", file_object=fh)
payloads.upload(payload_id=pid, blob_name="note.txt", file_object=io.BytesIO(b"hello"))
details = payloads.get_details(payload_id=pid)
files = sorted((f.name, f.size) for f in details.file_details)
buf = io.BytesIO()
got = payloads.download_from(payload_id=pid, blob_name="/input/series/big.bin", dest_obj=buf)
payloads.remove_from(payload_id=pid, blob_name="./input/note.txt")
after = sorted(f.name for f in payloads.get_details(payload_id=pid).file_details)
added = dict(payloads.add_metadata(payload_id=pid, metadata={{"modality": "CT"}}))
left = dict(payloads.remove_metadata(payload_id=pid, keys=["SOURCE"]))
escape = error(payloads.upload, payload_id=pid, blob_name="../../etc/x", file_object=io.BytesIO(b"x"))
missing = error(payloads.download_from, payload_id=pid, blob_name="input/nope", dest_obj=io.BytesIO())
payloads.delete_payload(payload_id=pid)
out(dict(pid=pid.value, type=created.payload_type, up=[up.name, up.size], files=files, size=len(buf.getvalue()),
         same=buf.getvalue() == open("{big}", "rb").read(), got=[got.name, got.size], after=after,
         meta=dict(details.metadata), added=added, left=left, escape=escape, missing=missing,
         deleted=error(payloads.get_details, payload_id=pid)))
''', big=big)
    size = big.stat().st_size
    assert len(result["pid"]) == 32 and result["type"] == 2                # PAYLOAD_TYPE_REUSABLE
    assert result["up"] == ["/input/series/big.bin", size]
    assert result["files"] == [["/input/note.txt", 5], ["/input/series/big.bin", size]]
    assert result["same"] and result["got"] == ["/input/series/big.bin", size]
    assert result["after"] == ["/input/series/big.bin"]
    assert result["meta"] == {"source": "pacs"}
    assert result["added"] == {"source": "pacs", "modality": "CT"} and result["left"] == {"modality": "CT"}
    assert "must be relative and may not contain '..'" in result["escape"]
    assert result["missing"] == f"Exception: file 'input/nope' not found in payload {result['pid']}"
    assert result["deleted"] == f"Exception: payload '{result['pid']}' was deleted"


def test_two_jobs_on_one_payload_keep_their_own_outputs(clara):
    result = clara.run('''
pipe = pipelines.create_pipeline(definition=[pipeline_types.PipelineDefinition(name="c.yaml", content={pdl!r})])
shared = payloads.create_payload().payload_id
payloads.upload(payload_id=shared, blob_name="scan.dcm", file_object=io.BytesIO(b"DICM-bytes"))
first = jobs.create_job(job_name="first", pipeline_id=pipe, input_payloads=[shared])
second = jobs.create_job(job_name="second", pipeline_id=pipe, input_payloads=[shared])
for job in (first, second):
    jobs.start_job(job_id=job.job_id)
for job in (first, second):
    wait_stopped(job.job_id)
def read(pid, name):
    buf = io.BytesIO(); payloads.download_from(payload_id=pid, blob_name=name, dest_obj=buf); return buf.getvalue().decode()
readonly = error(payloads.upload, payload_id=first.payload_id, blob_name="late.dcm", file_object=io.BytesIO(b"x"))
out(dict(first=[first.job_id.value, first.payload_id.value], second=[second.job_id.value, second.payload_id.value],
         shared=sorted(f.name for f in payloads.get_details(payload_id=shared).file_details),
         first_out=read(first.payload_id, "/operators/copy/job.txt"),
         second_out=read(second.payload_id, "/operators/copy/job.txt"),
         copied=read(second.payload_id, "/operators/copy/scan.dcm"), readonly=readonly,
         statuses=[jobs.get_status(job_id=j.job_id).job_status for j in (first, second)]))
''', pdl=COPY)
    (first_job, first_payload), (second_job, second_payload) = result["first"], result["second"]
    assert result["statuses"] == [1, 1]
    assert first_payload != second_payload
    assert result["first_out"] == clara.rest.get_job(first_job)["id"]     # each job's output is its own
    assert result["second_out"] == clara.rest.get_job(second_job)["id"]
    assert result["copied"] == "DICM-bytes"
    assert result["shared"] == ["/input/scan.dcm"]                         # the input payload is untouched
    assert result["readonly"] == (f"Exception: payload {first_payload} belongs to job "
                                  f"{clara.rest.get_job(first_job)['id']}, which has started: its files are read-only")
