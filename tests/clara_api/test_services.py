"""PDL `services` are started for the jobs that need them (a local process here), shared by jobs
that declare the same one, ready before the first operator, their http and volume connections
given to the operators, their variables to the service, stopped when idle; a Triton/TRTIS service
maps to the platform's inference service; a service that cannot start faults the job saying so."""

from __future__ import annotations

import json
import textwrap
import time

import psutil
import pytest

from tests.clara_api.support import start_platform
from tests.ports import free_port

SERVICE = '''\
"""Test service: answers GET with its pid and a variable; writes a file into its shared volume."""
import http.server, json, os, pathlib, sys
port, share = int(sys.argv[1]), pathlib.Path(os.environ["SHARED_DIR"])
(share / "from-service.txt").write_text("written by the service")
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pid": os.getpid(), "greeting": os.environ["GREETING"]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
'''

OPERATOR = '''\
import json, os, sys, urllib.request
answer = json.load(urllib.request.urlopen("http://" + os.environ["MY_SERVICE_URI"] + "/"))
shared = open(os.path.join(os.environ["SHARED_DIR"], "from-service.txt")).read()
json.dump({"answer": answer, "shared": shared, "triton": os.environ.get("NVIDIA_CLARA_TRTISURI_LEGACY")},
          open(os.path.join(sys.argv[1], "seen.json"), "w"))
'''


def pipeline(tmp_path, port: int, name: str = "with-service", service_command: str | None = None) -> str:
    (tmp_path / "service.py").write_text(SERVICE)
    (tmp_path / "operator.py").write_text(OPERATOR)
    command = service_command or f'["python", "{tmp_path / "service.py"}", "{port}"]'
    return textwrap.dedent(f"""\
        api-version: 0.4.0
        name: {name}
        operators:
        - name: ask
          container: {{image: claractl/ask, command: [python, "{tmp_path / 'operator.py'}", /out]}}
          output: [{{path: /out}}]
          services:
          - name: echo-service
            container: {{image: claractl/echo-service, command: {command}}}
            variables: {{GREETING: hello-from-pdl}}
            connections:
              http: [{{name: MY_SERVICE_URI, port: {port}}}]
              volume: [{{name: SHARED_DIR, path: /shared}}]
          - name: trtis
            container: {{image: nvcr.io/nvidia/tensorrtserver, tag: 19.08-py3, command: [trtserver]}}
            connections:
              http: [{{name: NVIDIA_CLARA_TRTISURI_LEGACY, port: 8000}}]
        """)


@pytest.fixture
def clara(tmp_path):
    running = start_platform(tmp_path / "state", service_idle=0.5)
    yield running
    running.stop()


def test_a_service_runs_for_its_jobs_shared_and_stops_when_idle(clara, tmp_path):
    c = clara.rest
    c.put_pipeline("with-service", pipeline(tmp_path, free_port()))
    jobs = [c.create_job("with-service") for _ in range(2)]
    for job in jobs:
        c.start_job(job["id"])
    seen = []
    for job in jobs:
        done = c.wait_for_job(job["id"], 120)
        assert done["status"] == "HEALTHY", done["message"]
        seen.append(json.loads((clara.config.payloads_dir / done["payload_id"] / "operators/ask/seen.json").read_text()))
    assert seen[0]["answer"]["greeting"] == "hello-from-pdl"                 # service variables
    assert seen[0]["shared"] == "written by the service"                     # volume connection
    assert seen[0]["triton"] == clara.platform.engine.platform_env()["NVIDIA_TRITON_HTTPURI"]   # TRTIS → inference
    pids = {s["answer"]["pid"] for s in seen}
    assert len(pids) == 1                                                    # one service for both jobs
    pid = next(iter(pids))

    def stopped() -> bool:           # the sweep drops it from status first, then stops it (3 s grace)
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 30
    while not (stopped() and not clara.platform.engine.status()["services"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stopped()                                                         # idle: stopped
    assert clara.platform.engine.status()["services"] == []


def test_a_service_that_cannot_start_faults_the_job_naming_it(clara, tmp_path):
    c = clara.rest
    c.put_pipeline("broken-service", pipeline(tmp_path, free_port(), name="broken-service",
                                              service_command='["python", "-c", "import sys; sys.exit(3)"]'))
    job = c.create_job("broken-service")
    c.start_job(job["id"])
    done = c.wait_for_job(job["id"], 120)
    assert done["status"] == "FAULTED"
    assert done["message"].startswith("service 'echo-service' of operator 'ask' (claractl/echo-service) could not "
                                      "start: exited with code 3 before it was ready (log: ")
    assert [o["state"] for o in done["operators"]] == ["PENDING"]           # no operator ran
