"""The engine end to end through the API: DAG, payload layout, environment, faults, cancel,
timeout, priorities and admission, concurrency."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from claractl.platform.client import ApiError
from platform_helpers import alive, op, pdl, single_op_pipeline


def three_operator_pipeline() -> str:
    return pdl("three-ops", [
        op("upper", "upper.py", ["/input", "/out"], inputs=[{"path": "/input"}], outputs=[{"path": "/out"}]),
        op("split", "split.py", ["/in", "/left", "/right"], inputs=[{"from": "upper", "path": "/in"}],
           outputs=[{"name": "left", "path": "/left"}, {"name": "right", "path": "/right"}]),
        op("merge", "merge.py", ["/result"],
           inputs=[{"from": "split", "name": "left", "path": "/left"},
                   {"from": "split", "name": "right", "path": "/right"},
                   {"from": "upper", "path": "/upper"}],
           outputs=[{"name": "result", "path": "/result"}],
           variables={"GREETING": "${{ greeting }}"}),
    ], parameters={"greeting": "hello"})


def test_three_operators_pass_named_outputs_with_clara_payload_layout(start_platform):
    p = start_platform()
    c = p.client
    c.put_pipeline("three-ops", three_operator_pipeline(), export=[{"agent": "ClaraSCU", "destinations": ["pacs"]}])
    payload = c.create_payload()
    c.upload_payload_file(payload["id"], "input/a.txt", b"one\ntwo\nthree\nfour\n")
    c.upload_payload_file(payload["id"], "input/notes/b.txt", b"x\n")
    job = c.create_job("three-ops", name="e2e", payload_id=payload["id"])
    assert job["state"] == "PENDING" and not job["started"]
    c.start_job(job["id"], {"greeting": "bonjour"})
    job = c.wait_for_job(job["id"], timeout=60)
    assert (job["state"], job["status"]) == ("STOPPED", "HEALTHY"), job["message"]

    # The job's outputs are in its own payload; the given payload is its (unchanged) input.
    assert {f["path"] for f in c.list_payload_files(payload["id"])} == {"input/a.txt", "input/notes/b.txt"}
    files = {f["path"] for f in c.list_payload_files(job["payload_id"])}
    assert files == {
        "input/a.txt", "input/notes/b.txt",
        "operators/upper/a.txt", "operators/upper/notes/b.txt",
        "operators/split/left/a.txt",
        "operators/split/right/a.txt",
        "operators/merge/result/result.txt", "operators/merge/result/env.json",
    }
    root = p.config.payloads_dir / job["payload_id"]
    assert (root / "operators/upper/a.txt").read_text() == "ONE\nTWO\nTHREE\nFOUR\n"
    assert (root / "operators/upper/notes/b.txt").read_text() == "X\n"
    assert (root / "operators/split/left/a.txt").read_text() == "ONE\nTHREE\n"
    assert (root / "operators/split/right/a.txt").read_text() == "TWO\nFOUR\n"
    assert (root / "operators/merge/result/result.txt").read_text() == (
        "a.txt: left=['ONE', 'THREE'] right=['TWO', 'FOUR'] upper=['ONE', 'TWO', 'THREE', 'FOUR']\n")

    env = json.loads((root / "operators/merge/result/env.json").read_text())
    assert env["GREETING"] == "bonjour"
    assert env["NVIDIA_CLARA_JOB_ID"] == job["id"]
    assert env["NVIDIA_CLARA_JOB_NAME"] == "e2e"
    assert env["NVIDIA_CLARA_PIPELINE_NAME"] == "three-ops"
    assert env["NVIDIA_CLARA_PAYLOAD_PATH"] == str(root)
    assert json.loads(env["NVIDIA_CLARA_INPUT_PATHS"]) == {
        "/left": str(root / "operators/split/left"), "/right": str(root / "operators/split/right"),
        "/upper": str(root / "operators/upper")}
    assert json.loads(env["NVIDIA_CLARA_OUTPUT_PATHS"]) == {"/result": str(root / "operators/merge/result")}
    assert env["NVIDIA_TRITON_HTTPURI"] == "127.0.0.1:8000" == env["NVIDIA_CLARA_TRTISURI"]
    assert env["NVIDIA_TRITON_GRPCURI"] == "127.0.0.1:8001"
    assert env["CLARA_API_URL"] == p.config.api_url

    ops = {o["name"]: o for o in job["operators"]}
    assert [o["name"] for o in job["operators"]] == ["upper", "split", "merge"]
    assert all((o["state"], o["status"], o["exit_code"]) == ("STOPPED", "HEALTHY", 0) for o in ops.values())
    assert ops["upper"]["stopped_at"] <= ops["split"]["started_at"] <= ops["split"]["stopped_at"] <= ops["merge"]["started_at"]
    assert "upper: 2 file(s)" in c.get_job_logs(job["id"], "upper")
    assert (p.config.logs_dir / "jobs" / job["id"] / "merge.log").read_text().strip().endswith("merge done")

    tasks = c.list_export_tasks(job_id=job["id"])
    assert [(t["agent"], t["destination"], t["state"], t["files"]) for t in tasks] == [
        ("ClaraSCU", "pacs", "PENDING", ["operators/merge/result/env.json", "operators/merge/result/result.txt"])]
    metrics = c.metrics()
    assert 'clara_jobs{state="STOPPED",status="HEALTHY"} 1' in metrics
    assert 'clara_operator_duration_seconds_count{pipeline="three-ops",operator="merge"} 1' in metrics


def test_independent_operators_run_in_parallel(start_platform, tmp_path):
    p = start_platform(cpu=8)
    order, release = tmp_path / "order", tmp_path / "release"
    both = [op(n, "wait_for.py", [str(order), str(release)], inputs=[{"path": "/input"}],
               outputs=[{"path": "/out"}], requests={"cpu": 1}) for n in ("left", "right")]
    p.client.put_pipeline("fan", pdl("fan", both))
    job = p.client.create_job("fan")
    p.client.start_job(job["id"])
    deadline = time.time() + 30
    while not (order.exists() and len(order.read_text().split()) == 2) and time.time() < deadline:
        time.sleep(0.05)
    running = [o["state"] for o in p.client.get_job(job["id"])["operators"]]
    release.touch()
    assert running == ["RUNNING", "RUNNING"]
    assert p.client.wait_for_job(job["id"], 30)["status"] == "HEALTHY"


def test_nonzero_exit_faults_the_job_naming_the_operator(start_platform):
    p = start_platform()
    p.client.put_pipeline("bad", pdl("bad", [
        op("first", "fail.py", [], inputs=[{"path": "/input"}], outputs=[{"path": "/out"}]),
        op("second", "noop.py", [], inputs=[{"from": "first", "path": "/in"}], outputs=[{"path": "/out"}]),
    ]))
    job = p.client.create_job("bad")
    p.client.start_job(job["id"])
    job = p.client.wait_for_job(job["id"], 30)
    assert job["status"] == "FAULTED"
    assert "operator 'first' exited with code 3" in job["message"]
    first, second = job["operators"]
    assert (first["status"], first["exit_code"]) == ("FAULTED", 3)
    assert (second["state"], second["status"], second["started_at"]) == ("STOPPED", "CANCELED", None)
    assert "something went wrong" in p.client.get_job_logs(job["id"], "first")
    assert p.client.list_export_tasks(job_id=job["id"]) == []


def _wait_pids(pid_file: Path, count: int) -> list[int]:
    deadline = time.time() + 30
    while time.time() < deadline:
        if pid_file.exists():
            pids = [int(x) for x in pid_file.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.05)
    raise AssertionError(f"operator did not start its processes: {pid_file}")


def test_cancel_kills_the_whole_process_tree(start_platform, tmp_path):
    p = start_platform()
    pid_file = tmp_path / "pids"
    p.client.put_pipeline("sleepy", single_op_pipeline("sleepy", "spawn_and_sleep.py", [str(pid_file)]))
    job = p.client.create_job("sleepy")
    p.client.start_job(job["id"])
    pids = _wait_pids(pid_file, 3)
    assert len(alive(pids)) == 3
    p.client.cancel_job(job["id"])
    job = p.client.wait_for_job(job["id"], 30)
    assert (job["status"], job["operators"][0]["status"]) == ("CANCELED", "CANCELED")
    assert alive(pids) == []


def test_timeout_terminates_the_job_and_its_processes(start_platform, tmp_path):
    p = start_platform()
    pid_file = tmp_path / "pids"
    p.client.put_pipeline("sleepy", single_op_pipeline("sleepy", "spawn_and_sleep.py", [str(pid_file)]))
    job = p.client.create_job("sleepy", timeout=2)
    p.client.start_job(job["id"])
    pids = _wait_pids(pid_file, 3)
    job = p.client.wait_for_job(job["id"], 30)
    assert job["status"] == "TERMINATED" and "timed out after 2 s" in job["message"]
    assert alive(pids) == []


def test_cancel_of_a_queued_job_stops_it_without_running(start_platform):
    p = start_platform()
    p.client.put_pipeline("noop", single_op_pipeline("noop", "noop.py", []))
    job = p.client.create_job("noop")
    canceled = p.client.cancel_job(job["id"])
    assert (canceled["state"], canceled["status"]) == ("STOPPED", "CANCELED")
    with pytest.raises(ApiError) as err:
        p.client.start_job(job["id"])
    assert err.value.status == 409


def test_immediate_job_runs_before_earlier_normal_ones_when_capacity_fits_one(start_platform, tmp_path):
    # capacity 2 cores, each operator requests Clara's default of 2: one job at a time.
    p = start_platform(cpu=2, workers=4)
    order, release = tmp_path / "order", tmp_path / "release"
    p.client.put_pipeline("gate", single_op_pipeline("gate", "wait_for.py", [str(order), str(release)]))
    jobs = {}
    for name, priority in [("blocker", "normal"), ("n1", "normal"), ("n2", "normal"), ("n3", "normal"),
                           ("urgent", "immediate")]:
        jobs[name] = p.client.create_job("gate", name=name, priority=priority)["id"]
        p.client.start_job(jobs[name])
        if name == "blocker":
            deadline = time.time() + 30
            while not order.exists() and time.time() < deadline:
                time.sleep(0.05)
    time.sleep(0.5)   # the engine looked at the queue several times: nothing else was admitted
    assert order.read_text().split() == ["blocker"]
    release.touch()
    done = [p.client.wait_for_job(j, 60) for j in jobs.values()]
    assert all(j["status"] == "HEALTHY" for j in done)
    assert order.read_text().split() == ["blocker", "urgent", "n1", "n2", "n3"]
    spans = sorted((datetime.fromisoformat(j["started_at"]), datetime.fromisoformat(j["stopped_at"])) for j in done)
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:])), "two jobs ran at once"


def test_fifty_concurrent_jobs_each_run_exactly_once(database, start_platform, tmp_path):
    p = start_platform(database, cpu=8, workers=4)
    ledger = tmp_path / "ledger"
    p.client.put_pipeline("count", pdl("count", [op("count", "count.py", [str(ledger), "/out"],
                                                    inputs=[{"path": "/input"}], outputs=[{"path": "/out"}],
                                                    requests={"cpu": 1, "memory": 64})]))

    def submit(i: int) -> str:
        job = p.client.create_job("count", name=f"c{i}")
        p.client.start_job(job["id"])
        return job["id"]

    with ThreadPoolExecutor(10) as pool:
        ids = list(pool.map(submit, range(50)))
    finished = [p.client.wait_for_job(j, 120) for j in ids]
    assert [j["status"] for j in finished] == ["HEALTHY"] * 50
    assert all(j["attempts"] == 1 for j in finished)
    runs = ledger.read_text().split()
    assert sorted(runs) == sorted(ids) and len(set(runs)) == 50


def test_unknown_start_variable_is_rejected(start_platform):
    p = start_platform()
    p.client.put_pipeline("three-ops", three_operator_pipeline())
    job = p.client.create_job("three-ops")
    with pytest.raises(ApiError) as err:
        p.client.start_job(job["id"], {"colour": "red"})
    assert err.value.status == 422 and "colour" in err.value.detail


def test_image_without_container_runtime_fails_with_a_clear_message(start_platform, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    p = start_platform()
    text = pdl("ext", [{"name": "seg", "container": {"image": "nvcr.io/nvidia/clara/seg", "tag": "1.0",
                                                    "command": ["seg"]},
                        "input": [{"path": "/input"}], "output": [{"path": "/output"}]}])
    p.client.put_pipeline("ext", text)
    job = p.client.create_job("ext")
    p.client.start_job(job["id"])
    job = p.client.wait_for_job(job["id"], 30)
    assert job["status"] == "FAULTED"
    assert "needs podman or docker; neither is installed" in job["message"]
    assert "'nvcr.io/nvidia/clara/seg:1.0'" in job["message"]
