"""Clara PDL accepted by claractl and now honoured: an operator's `timeout`, 0.5.0 typed inputs
without `from` (the job's payload); and what claractl cannot honour refused with a message that
says so (shared-memory inputs and outputs)."""

from __future__ import annotations

import textwrap

import psutil
import pytest

from claractl.project import ProjectError, parse_pipeline

TIMEOUT = textwrap.dedent("""\
    api-version: 0.4.0
    name: slow-op
    operators:
    - name: slow
      timeout: 1
      container: {image: claractl/slow, command: [python, -c, "import os,sys,time; print(os.getpid(), flush=True); time.sleep(4); open(sys.argv[1] + '/finished', 'w').write('x')", /out]}
      output: [{path: /out}]
    - name: after
      container: {image: claractl/after, command: [python, -c, "print('after')"]}
      input: [{from: slow, path: /in}]
    """)

TYPED = textwrap.dedent("""\
    api-version: 0.5.0
    name: typed
    operators:
    - name: reader
      container: {image: claractl/reader, command: [python, -c, "import os,sys; open(sys.argv[2] + '/seen.txt', 'w').write(','.join(sorted(os.listdir(sys.argv[1]))))", /in/dicom, /out]}
      input:
      - name: dicom-series
        path: /in/dicom
        type: stream
        element-type: dicom
      output:
      - name: listing
        path: /out
        type: stream
        element-type: text
    """)


def shared_memory(kind: str) -> str:
    entry = "{name: volume, type: array, element-type: float32, shape: [1, 512, 512]}"
    return textwrap.dedent(f"""\
        api-version: 0.5.0
        name: fastio
        operators:
        - name: producer
          container: {{image: claractl/p}}
          {"output" if kind == "output" else "input"}: [{entry}]
        """)


def test_operator_timeout_stops_it_and_faults_the_job(clara, tmp_path):
    c = clara.rest
    c.put_pipeline("slow-op", TIMEOUT)
    job = c.create_job("slow-op")
    c.start_job(job["id"])
    done = c.wait_for_job(job["id"], 60)
    assert (done["state"], done["status"]) == ("STOPPED", "FAULTED")
    assert done["message"] == "operator 'slow' exceeded its timeout of 1 s (PDL `timeout`) and was stopped"
    ops = {o["name"]: o for o in done["operators"]}
    assert (ops["slow"]["status"], ops["slow"]["message"]) == ("FAULTED", "stopped: ran longer than its timeout of 1 s")
    assert ops["after"]["status"] == "CANCELED"
    pid = int(c.get_job_logs(job["id"], "slow").splitlines()[1])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (clara.config.payloads_dir / done["payload_id"] / "operators/slow/finished").exists()


def test_typed_input_without_from_takes_the_job_payload(clara):
    c = clara.rest
    c.put_pipeline("typed", TYPED)
    payload = c.create_payload()
    c.upload_payload_file(payload["id"], "input/a.dcm", b"a")
    c.upload_payload_file(payload["id"], "input/b.dcm", b"b")
    job = c.create_job("typed", payload_id=payload["id"])
    c.start_job(job["id"])
    done = c.wait_for_job(job["id"], 60)
    assert done["status"] == "HEALTHY", done["message"]
    seen = clara.config.payloads_dir / done["payload_id"] / "operators/reader/listing/seen.txt"
    assert seen.read_text() == "a.dcm,b.dcm"


@pytest.mark.parametrize("kind", ["input", "output"])
def test_shared_memory_entries_are_refused_saying_why(kind):
    text = shared_memory(kind)
    with pytest.raises(ProjectError) as caught:
        parse_pipeline(text, "fastio.yaml")
    column = text.splitlines()[5].index("array") + 1                 # at the `type` value
    assert [str(d) for d in caught.value.diagnostics] == [
        f"fastio.yaml:6:{column}: operators[0].{kind}[0].type: shared-memory {kind}s are "
        f"not supported by claractl; use a path {kind} (type: stream)"]


def test_a_named_input_without_from_still_needs_from_before_0_5(clara):
    old = TYPED.replace("api-version: 0.5.0", "api-version: 0.4.0")
    with pytest.raises(ProjectError, match=r"`name` needs `from`.*needs api-version 0.5.0 or later"):
        parse_pipeline(old, "old.yaml")
