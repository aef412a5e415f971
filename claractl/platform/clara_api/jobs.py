"""Clara's Jobs service → claractl.platform.operations.jobs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from claractl.platform.clara_api.answers import ok
from claractl.platform.clara_api import convert as cv
from claractl.platform.clara_api.protos import message as M
from claractl.platform.operations import Context
from claractl.platform.operations import jobs as ops
from claractl.platform.operations.ids import checked_id

LOG_LINES_PER_MESSAGE = 1000


def _job_id(request) -> str:
    return checked_id(request.job_id.value, "job")


def _dag(definition: dict[str, Any]) -> list:
    """Each operator with the operators it reads from (`input_dependencies`), recursively."""
    ops_by_name = {o["name"].lower(): o for o in definition.get("operators") or []}

    def node(op: dict[str, Any]):
        deps = [ops_by_name[str(i["from"]).lower()] for i in op.get("input") or []
                if i.get("from") and str(i["from"]).lower() in ops_by_name]
        return M("JobsStatusResponse.JobDagNode")(name=op["name"], input_dependencies=[node(d) for d in deps])

    return [node(o) for o in definition.get("operators") or []]


class JobsService:
    SERVICE, FAMILY = "Jobs", "job"
    ABORT_ON_ERROR = ("ReadLogs",)       # NVIDIA's client reads the logs without checking the header

    def __init__(self, c: Context) -> None:
        self.c = c

    def Create(self, request, _context):
        job = ops.create_job(
            self.c, pipeline_id=checked_id(request.pipeline_id.value, "pipeline"), name=request.name or None,
            priority=cv.priority_name(request.priority),
            input_payloads=[checked_id(p.value, "payload") for p in request.input_payloads],
            metadata=dict(request.metadata))
        return M("JobsCreateResponse")(header=ok(), job_id=cv.ident(job["id"]), payload_id=cv.ident(job["payload_id"]))

    def Start(self, request, _context):
        variables = {nv.name: nv.value for nv in request.Variables}
        job = ops.start_job(self.c, _job_id(request), variables)
        return M("JobsStartResponse")(header=ok(), priority=cv.priority(job["priority"]),
                                      state=cv.job_state(job["state"]), status=cv.job_status(job["status"]))

    def Cancel(self, request, _context):
        job = ops.cancel_job(self.c, _job_id(request), request.reason or None)
        return M("JobsCancelResponse")(header=ok(), job_id=cv.ident(job["id"]), job_state=cv.job_state(job["state"]),
                                       job_status=cv.job_status(job["status"]))

    def Status(self, request, _context):
        job = ops.get_job(self.c, _job_id(request))
        messages = [job["message"]] if job["message"] else []
        messages += [f"{op['name']}: {op['message']}" for op in job["operators"] if op["message"]]
        out = M("JobsStatusResponse")(
            header=ok(), job_id=cv.ident(job["id"]), pipeline_id=cv.ident(job["pipeline_id"]),
            payload_id=cv.ident(job["payload_id"]), state=cv.job_state(job["state"]),
            status=cv.job_status(job["status"]), name=job["name"], priority=cv.priority(job["priority"]),
            created=cv.timestamp(job["created_at"]), started=cv.timestamp(job["started_at"]),
            stopped=cv.timestamp(job["stopped_at"]), messages=messages,
            timestamp_created=cv.text_time(job["created_at"]), timestamp_started=cv.text_time(job["started_at"]),
            timestamp_stopped=cv.text_time(job["stopped_at"]),
            operator_details=[M("JobsStatusResponse.JobOperatorDetails")(
                name=op["name"], status=cv.operator_status(op), created=cv.timestamp(op["created_at"]),
                started=cv.timestamp(op["started_at"]), stopped=cv.timestamp(op["stopped_at"]))
                for op in job["operators"]],
            dag=_dag(job["definition"]))
        cv.metadata_map(out.metadata, job["metadata"])
        return out

    def List(self, request, _context) -> Iterator:
        f = request.filter
        found = ops.list_jobs(
            self.c, states=[s for s in map(cv.state_name, f.has_state) if s],
            statuses=[s for s in map(cv.status_name, f.has_status) if s],
            pipeline_ids=[checked_id(p.value, "pipeline") for p in f.pipeline_id],
            created_after=cv.from_timestamp(f.created_after), completed_before=cv.from_timestamp(f.completed_before),
            limit=None)
        if not found:
            yield M("JobsListResponse")(header=ok())
        for job in found:
            details = M("JobsListResponse.JobDetails")(
                job_id=cv.ident(job["id"]), payload_id=cv.ident(job["payload_id"]),
                pipeline_id=cv.ident(job["pipeline_id"]), job_name=job["name"], state=cv.job_state(job["state"]),
                status=cv.job_status(job["status"]), priority=cv.priority(job["priority"]),
                created=cv.timestamp(job["created_at"]), started=cv.timestamp(job["started_at"]),
                stopped=cv.timestamp(job["stopped_at"]), timestamp_created=cv.text_time(job["created_at"]),
                timestamp_started=cv.text_time(job["started_at"]), timestamp_stopped=cv.text_time(job["stopped_at"]))
            cv.metadata_map(details.metadata, job["metadata"])
            yield M("JobsListResponse")(header=ok(), job_details=details)

    def ReadLogs(self, request, _context) -> Iterator:
        name, text = ops.read_logs(self.c, _job_id(request), request.operator_name)
        lines = text.splitlines()
        for start in range(0, max(len(lines), 1), LOG_LINES_PER_MESSAGE):
            yield M("JobsReadLogsResponse")(header=ok(), job_id=request.job_id, operator_name=name,
                                            logs=lines[start:start + LOG_LINES_PER_MESSAGE])

    def AddMetadata(self, request, _context):
        out = M("JobsAddMetadataResponse")(header=ok(), job_id=request.job_id)
        cv.metadata_map(out.metadata, ops.add_metadata(self.c, _job_id(request), dict(request.metadata)))
        return out

    def RemoveMetadata(self, request, _context):
        out = M("JobsRemoveMetadataResponse")(header=ok(), job_id=request.job_id)
        cv.metadata_map(out.metadata, ops.remove_metadata(self.c, _job_id(request), list(request.keys)))
        return out
