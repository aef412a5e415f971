"""Jobs through NVIDIA's JobsClient: create with a new payload or with input payloads, start with
variables, status with operator details and the DAG, list with filters, logs per operator,
cancel, metadata; errors as the client raises them."""

from __future__ import annotations

import textwrap

import pytest

from tests.clara_api.support import start_platform

SLEEPER = textwrap.dedent("""\
    api-version: 0.4.0
    name: sleeper
    parameters: {SECONDS: "0"}
    operators:
    - name: first
      container: {image: claractl/sleep, command: [python, -c, "import sys,time; print('first', sys.argv[1]); time.sleep(float(sys.argv[1])); open(sys.argv[2] + '/done', 'w').write('x')", "${{ SECONDS }}", /out]}
      output: [{path: /out}]
    - name: second
      container: {image: claractl/echo, command: [python, -c, "print('second ran')"]}
      input: [{from: first, path: /in}]
    """)

PREAMBLE = '''
from pathlib import Path
pid = pipelines.create_pipeline(definition=[pipeline_types.PipelineDefinition(name="sleeper.yaml",
                                                                                content={pdl!r})])
'''


@pytest.fixture(scope="module")
def clara(tmp_path_factory):
    running = start_platform(tmp_path_factory.mktemp("jobs-state"))
    yield running
    running.stop()


def test_status_with_operators_dag_logs_and_metadata(clara):
    result = clara.run(PREAMBLE + '''
job = jobs.create_job(job_name="quick", pipeline_id=pid, job_priority=job_types.JobPriority.Higher,
                      metadata={{"study": "1.2.3"}})
before = jobs.get_status(job_id=job.job_id)
token = jobs.start_job(job_id=job.job_id, named_values={{"SECONDS": "0.1"}})
status = wait_stopped(job.job_id)
raw = jobs._stub.Status(__import__("nvidia_clara.grpc.jobs_pb2", fromlist=["x"]).JobsStatusRequest(
    job_id=job.job_id.to_grpc_value()))
out(dict(job_id=job.job_id.value, payload_id=job.payload_id.value, before=[before.job_state, before.job_status],
         token=[token.job_state, token.job_priority], state=status.job_state, status=status.job_status,
         priority=status.job_priority, name=status.name, pipeline=status.pipeline_id.value,
         operators={{n: d["status"] for n, d in status.operator_details.items()}},
         times=[status.date_created <= status.date_started <= status.date_stopped],
         dag=[(n.name, [d.name for d in n.input_dependencies]) for n in raw.dag],
         metadata=dict(status.metadata),
         first=jobs.job_logs(job_id=job.job_id, operator_name="first"),
         second=jobs.job_logs(job_id=job.job_id, operator_name="SECOND"),
         added=dict(jobs.add_metadata(job_id=job.job_id, metadata={{"reader": "dr-who"}})),
         removed=dict(jobs.remove_metadata(job_id=job.job_id, keys=["study"])),
         again=error(jobs.start_job, job_id=job.job_id),
         no_operator=error(jobs.job_logs, job_id=job.job_id, operator_name="third")))
''', pdl=SLEEPER)
    assert result["before"] == [1, 1] and result["token"] == [1, 3]        # PENDING/HEALTHY, priority HIGHER
    assert (result["state"], result["status"], result["priority"], result["name"]) == (3, 1, 3, "quick")
    assert result["operators"] == {"first": 3, "second": 3}                # COMPLETED
    assert result["times"] == [True]
    assert result["dag"] == [["first", []], ["second", ["first"]]]
    assert result["metadata"] == {"study": "1.2.3"}
    assert "first 0.1" in result["first"] and "second ran" in result["second"]
    assert result["added"] == {"study": "1.2.3", "reader": "dr-who"} and result["removed"] == {"reader": "dr-who"}
    assert result["again"] == f"Exception: job {result['job_id']} was already started (state STOPPED)"
    assert "job " + result["job_id"] + " has no operator 'third'; it has: first, second" in result["no_operator"]
    job = clara.rest.get_job(result["job_id"])                             # the HTTP API: the same job
    assert (job["status"], job["priority"], job["variables"]) == ("HEALTHY", "higher", {"SECONDS": "0.1"})
    assert job["payload_id"].replace("-", "") == result["payload_id"]


def test_list_filters_cancel_and_unknown_variables(clara):
    result = clara.run(PREAMBLE + '''
slow = jobs.create_job(job_name="slow", pipeline_id=pid)
jobs.start_job(job_id=slow.job_id, named_values={{"SECONDS": "30"}})
idle = jobs.create_job(job_name="idle", pipeline_id=pid)
deadline = time.time() + 30
while jobs.get_status(job_id=slow.job_id).job_state != job_types.JobState.Running.value and time.time() < deadline:
    time.sleep(0.1)
running = [j.name for j in jobs.list_jobs(job_types.JobFilter(has_job_state=[job_types.JobState.Running]))]
pending = [j.name for j in jobs.list_jobs(job_types.JobFilter(has_job_state=[job_types.JobState.Pending]))]
mine = {{j.name for j in jobs.list_jobs(job_types.JobFilter(pipeline_ids=[pid]))}}
canceled = jobs.cancel_job(job_id=slow.job_id, reason="wrong patient")
status = wait_stopped(slow.job_id)
bad_var = error(jobs.start_job, job_id=idle.job_id, named_values={{"NOPE": "1"}})
idle_cancel = jobs.cancel_job(job_id=idle.job_id)
stopped = [j.name for j in jobs.list_jobs(job_types.JobFilter(has_job_status=[job_types.JobStatus.Canceled]))]
out(dict(running=running, pending=pending, mine=sorted(mine), canceled=[canceled.job_state, canceled.job_status],
         status=[status.job_state, status.job_status, list(status.messages)], bad_var=bad_var,
         idle_cancel=[idle_cancel.job_state, idle_cancel.job_status], stopped=sorted(stopped),
         unknown=error(jobs.get_status, job_id=job_types.JobId("f" * 32)),
         no_pipeline=error(jobs.create_job, job_name="x", pipeline_id=pipeline_types.PipelineId("e" * 32))))
''', pdl=SLEEPER)
    assert result["running"] == ["slow"] and "idle" in result["pending"]
    assert {"slow", "idle"} <= set(result["mine"])
    assert result["canceled"] == [2, 1]                                    # still RUNNING, HEALTHY: being stopped
    state, status, messages = result["status"]
    assert (state, status) == (3, 3) and messages[0] == "canceled by request: wrong patient"
    assert "placeholder" in result["bad_var"] or "NOPE" in result["bad_var"]
    assert result["idle_cancel"] == [3, 3]
    assert {"slow", "idle"} <= set(result["stopped"])
    assert result["unknown"] == f"Exception: job '{'f' * 32}' not found"
    assert result["no_pipeline"] == f"Exception: pipeline '{'e' * 32}' not found"
