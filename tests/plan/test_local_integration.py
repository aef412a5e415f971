"""Plan/apply/destroy against a real local platform (background process, SQLite, HTTP API)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading

import httpx
import pytest

from tests.plan.integration import free_ports, make_env
from tests.plan.projects import write_model


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.stop()


def converge(env, **kw):
    env.write(**kw)
    r = env.cli("apply", "--auto-approve")
    assert r.exit_code == 0, r.output
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 0, r.output
    assert "No changes." in r.output
    return r


def test_apply_then_plan_has_no_changes_through_a_sequence_of_edits(env):
    first = env.write()
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 2 and "Plan: 5 to add, 0 to change, 0 to destroy." in r.output, r.output
    converge(env)
    assert env.get("/models/tiny")["state"] == "LOADED"
    assert {a["ae_title"]: a["owner"] for a in env.get("/ae-titles")} == {"HELLO": "plan-test"}

    # Every kind of object and field: services (restart), model content, pipeline definition,
    # AE title settings, source host, destination port.
    write_model(env.root, "tiny", scale=3.0)
    env.write(workers=3, tag="0.2.0", ae_timeout=9, priority="immediate", dest_port=4300, source_host="10.1.2.3")
    r = env.cli("plan", "--detailed-exitcode", "-o", "json")
    assert r.exit_code == 2
    changed = {c["address"]: c["action"] for c in json.loads(r.output)["changes"] if c["action"] != "no-op"}
    assert changed == {a: "update" for a in ["service.platform", "model.tiny", "pipeline.hello", "ae-title.HELLO",
                                              "source.pacs-main", "destination.pacs-main"]}
    converge(env, workers=3, tag="0.2.0", ae_timeout=9, priority="immediate", dest_port=4300, source_host="10.1.2.3")
    converge(env, workers=3, tag="0.2.0", ae_timeout=9, priority="immediate", dest_port=4300, source_host="10.1.2.3",
             export=True)
    assert env.get("/pipelines/hello")["export"][0]["destinations"] == ["pacs-main"]
    assert env.get("/config")["api"]["workers"] == 3
    assert env.get("/destinations/pacs-main")["port"] == 4300

    # Add and remove objects: a second model, pipeline and AE title; then drop them again.
    write_model(env.root, "tiny2")
    more = dict(models=("tiny", "tiny2"), pipelines=("hello", "second"), ae_titles=("HELLO", "SECOND"))
    converge(env, **more)
    assert {m["name"] for m in env.get("/models")} == {"tiny", "tiny2"}
    env.write()
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 2 and "Plan: 0 to add, 0 to change, 3 to destroy." in r.output, r.output
    converge(env)
    assert {m["name"] for m in env.get("/models")} == {"tiny"}
    assert first.exists()


def test_api_port_change_moves_the_platform(env):
    converge(env)
    pid_before = (env.root / ".clara" / "platform.pid").read_text()
    old = env.api
    env.ports["api_port"] = free_ports(1)[0]
    env.write()
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 2 and "~ api-port: " in r.output
    converge(env)
    assert env.get("/config")["api"]["port"] == env.ports["api_port"]
    assert (env.root / ".clara" / "platform.pid").read_text() != pid_before      # restarted
    with pytest.raises(httpx.HTTPError):
        httpx.get(old + "/config", timeout=2)


def test_drift_made_through_the_api_shows_and_is_reverted(env):
    converge(env)
    httpx.put(env.api + "/ae-titles/HELLO", json={"pipelines": ["hello"], "timeout": 60, "priority": "lower",
                                                  "owner": "plan-test"}).raise_for_status()
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 2
    assert '~ timeout: 60.0 → 5.0' in r.output and '~ priority: "lower" → "normal"' in r.output
    converge(env)


def test_stale_plan_refused_and_plan_applied_twice_refused(env):
    env.write()
    plan_file = env.root / "plan.bin"
    assert env.cli("plan", "--out", str(plan_file)).exit_code == 0
    # Someone changes the target in between (a destination created by this project elsewhere).
    httpx.put(env.api + "/destinations/pacs-main", json={"ae_title": "X", "host": "h", "port": 1,
                                                         "owner": "plan-test"}).raise_for_status()
    r = env.cli("apply", str(plan_file))
    assert r.exit_code == 1 and "stale" in r.output and "destination.pacs-main appeared" in r.output, r.output
    assert env.get("/pipelines") == []                       # nothing was applied

    assert env.cli("plan", "--out", str(plan_file)).exit_code == 0
    r = env.cli("apply", str(plan_file))
    assert r.exit_code == 0 and "Apply complete" in r.output, r.output
    r = env.cli("apply", str(plan_file))
    assert r.exit_code == 1 and "stale" in r.output and "only once" in r.output


def test_lock_contention_names_the_holder_and_force_unlock_releases_it(env):
    converge(env)
    held = httpx.post(env.api + "/locks/plan-test/local", json={"holder": "alice@ws1 pid 4242"}).json()
    env.write(priority="higher")
    r = env.cli("apply", "--auto-approve", "--lock-timeout", "1s")
    assert r.exit_code == 1
    assert "alice@ws1 pid 4242" in r.output and held["lock_id"] in r.output and "force-unlock" in r.output
    assert env.cli("force-unlock", "not-the-id").exit_code == 1          # only with the right ID
    r = env.cli("force-unlock", held["lock_id"])
    assert r.exit_code == 0, r.output
    converge(env, priority="higher")
    assert env.get("/ae-titles/HELLO")["priority"] == "higher"


def test_second_apply_waits_for_the_lock_within_lock_timeout(env):
    converge(env)
    held = httpx.post(env.api + "/locks/plan-test/local", json={"holder": "bob@ci pid 7"}).json()
    release = threading.Timer(1.5, lambda: httpx.delete(env.api + "/locks/plan-test/local",
                                                        params={"lock_id": held["lock_id"]}))
    release.start()
    env.write(priority="lower")
    r = env.cli("apply", "--auto-approve", "--lock-timeout", "30s")
    release.join()
    assert r.exit_code == 0, r.output
    assert env.get("/ae-titles/HELLO")["priority"] == "lower"
    assert httpx.get(env.api + "/locks/plan-test/local").status_code == 404      # released after apply


def test_destroy_leaves_hand_made_objects_alone(env):
    converge(env)
    httpx.put(env.api + "/ae-titles/HANDMADE", json={"pipelines": ["hello"]}).raise_for_status()
    httpx.put(env.api + "/sources/by-hand", json={"ae_title": "MODALITY", "host": "10.0.0.7"}).raise_for_status()
    r = env.cli("-v", "plan")
    assert "ae-title.HANDMADE (made by hand)" in r.output
    assert "ae-title.HANDMADE (made by hand)" in env.cli("plan", "-v").output
    assert "HANDMADE" not in env.cli("plan").output                    # only with -v
    r = env.cli("destroy", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert "- ae-title.HELLO" in r.output and "HANDMADE" not in r.output
    # destroy stopped the platform; its data stays. The next plan starts it again.
    r = env.cli("plan", "--detailed-exitcode")
    assert r.exit_code == 2 and "Plan: 5 to add" in r.output, r.output
    assert [a["ae_title"] for a in env.get("/ae-titles")] == ["HANDMADE"]
    assert [s["name"] for s in env.get("/sources")] == ["by-hand"]
    assert env.get("/models") == [] and env.get("/pipelines") == []


def test_protect_blocks_destroy(env):
    converge(env, protect=True)
    r = env.cli("destroy", "--auto-approve")
    assert r.exit_code == 1 and "lifecycle.protect" in r.output and "pipeline.hello" in r.output
    assert env.get("/pipelines")[0]["name"] == "hello"


def test_no_prompt_in_ci_without_auto_approve(env):
    env.write()
    r = env.cli("apply")
    assert r.exit_code == 1 and "--auto-approve" in r.output
    assert env.get("/pipelines") == []


def test_killed_apply_is_finished_by_the_next_one(env):
    names = tuple(f"AE{i:03d}" for i in range(120))
    env.write(ae_titles=names)
    proc = subprocess.Popen(
        [shutil.which("claractl"), "-C", str(env.root), "apply", "--auto-approve", "--parallelism", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "CI": "true"})
    seen = 0
    for line in proc.stdout:
        if line.startswith("ae-title.") and "create done" in line:
            seen += 1
            if seen == 5:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    have = len(env.get("/ae-titles"))
    assert 5 <= have < 120
    r = env.cli("plan", "-o", "json")
    pending = [c["address"] for c in json.loads(r.output)["changes"] if c["action"] != "no-op"]
    done = {f"ae-title.{a['ae_title']}" for a in env.get("/ae-titles")}
    assert set(pending) == {f"ae-title.{n}" for n in names} - done | {"source.pacs-main", "destination.pacs-main"}
    # The killed apply still holds the lock, but its process is gone: the next apply takes it over.
    lock_id = httpx.get(env.api + "/locks/plan-test/local").json()["lock_id"]
    r = env.cli("apply", "--auto-approve")
    assert r.exit_code == 0, r.output
    assert "no longer running" in r.output and lock_id in r.output
    converge(env, ae_titles=names)
    assert len(env.get("/ae-titles")) == 120


def test_api_token_from_env_never_appears_in_outputs_plan_files_or_logs(env, monkeypatch):
    token = "tok-INTEGRATION-8b1f0c2e-never-print"
    monkeypatch.setenv("CLARA_TEST_API_TOKEN", token)
    path = env.write()
    path.write_text(path.read_text().replace("platform: {", 'platform: {api-token: "${env:CLARA_TEST_API_TOKEN}", '))
    outputs = [env.cli("-v", "apply", "--auto-approve").output]
    for args in (["plan"], ["plan", "-o", "json"], ["plan", "-o", "markdown"], ["-vv", "plan", "--out", "p.bin"],
                 ["show", "p.bin", "-o", "json"]):
        r = env.cli(*args)
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    outputs.append((env.root / "p.bin").read_text())
    outputs += [p.read_text(errors="replace") for p in (env.root / ".clara" / "logs").rglob("*.log")]
    assert "No changes." in outputs[1]                                      # the token is write-only
    assert token not in "\n".join(outputs)
    # … yet it reached the platform: apply wrote it into the settings file the platform reads.
    assert json.loads((env.root / ".clara" / "platform.json").read_text())["api"]["token"] == token
