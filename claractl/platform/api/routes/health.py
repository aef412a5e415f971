"""Liveness, readiness and Prometheus metrics (served at the root, outside /api/v1)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, select, text

from claractl.platform.api.context import ApiContext, ctx
from claractl.platform.api.routes.common import utc
from claractl.platform.store.models import ExportTask, Job, OperatorRun

router = APIRouter(tags=["health"])


@router.get("/health/live")
def live() -> dict:
    return {"status": "live"}


@router.get("/health/ready")
def ready(c: ApiContext = Depends(ctx)):
    """200 when the store answers and every started component says it is ready; 503 otherwise."""
    components: dict[str, dict] = {}
    ok = True
    try:
        with c.store.session() as s:
            s.execute(text("SELECT 1"))
        components["store"] = {"ready": True}
    except Exception as exc:
        components["store"] = {"ready": False, "message": type(exc).__name__}
        ok = False
    for name, comp in c.components.items():
        try:
            st = dict(comp.status())
        except Exception as exc:  # a broken component makes the platform not ready, not the probe fail
            st = {"ready": False, "message": str(exc)}
        st.setdefault("ready", st.get("state") in ("running", "ready") or st.get("running") is True)
        components[name] = st
        ok = ok and bool(st["ready"])
    return JSONResponse({"status": "ready" if ok else "not ready", "components": components},
                        status_code=200 if ok else 503)


def _esc(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(c: ApiContext = Depends(ctx)) -> PlainTextResponse:
    lines = ["# HELP clara_jobs Jobs by state and status.", "# TYPE clara_jobs gauge"]
    with c.store.session() as s:
        for state, status, n in s.execute(select(Job.state, Job.status, func.count()).group_by(Job.state, Job.status)):
            lines.append(f'clara_jobs{{state="{_esc(state)}",status="{_esc(status)}"}} {n}')
        lines += ["# HELP clara_operator_duration_seconds Run time of finished operators.",
                  "# TYPE clara_operator_duration_seconds summary"]
        rows = s.execute(
            select(Job.pipeline_name, OperatorRun.name, OperatorRun.started_at, OperatorRun.stopped_at)
            .join(Job, Job.id == OperatorRun.job_id)
            .where(OperatorRun.started_at.is_not(None), OperatorRun.stopped_at.is_not(None))
        )
        agg: dict[tuple[str, str], list[float]] = {}
        for pipeline, op, started, stopped in rows:
            agg.setdefault((pipeline, op), []).append((utc(stopped) - utc(started)).total_seconds())
        for (pipeline, op), values in sorted(agg.items()):
            labels = f'pipeline="{_esc(pipeline)}",operator="{_esc(op)}"'
            lines.append(f"clara_operator_duration_seconds_sum{{{labels}}} {sum(values):.6f}")
            lines.append(f"clara_operator_duration_seconds_count{{{labels}}} {len(values)}")
        lines += ["# HELP clara_export_tasks Export tasks by agent and state.", "# TYPE clara_export_tasks gauge"]
        for agent, state, n in s.execute(select(ExportTask.agent, ExportTask.state, func.count())
                                         .group_by(ExportTask.agent, ExportTask.state)):
            lines.append(f'clara_export_tasks{{agent="{_esc(agent)}",state="{_esc(state)}"}} {n}')
    if c.engine is not None:
        st = c.engine.status()
        lines += ["# HELP clara_engine_running_jobs Jobs running now.", "# TYPE clara_engine_running_jobs gauge",
                  f"clara_engine_running_jobs {st.get('running_jobs', 0)}"]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
