"""Desired state: what the project says each managed object should look like."""

from __future__ import annotations

from typing import Any, Callable

from claractl.plan import address as addr
from claractl.plan.digest import model_digest
from claractl.plan.modelconfig import summary_of_dir
from claractl.plan.state import Resource
from claractl.project.model import Project

ServiceMapper = Callable[[Project], dict[str, dict[str, Any]]]


def model_fields(path, serve: bool = True) -> dict[str, Any]:
    """A model is identified by its content digest (plus a config summary to read); it should be
    LOADED when inference runs."""
    fields: dict[str, Any] = {"digest": model_digest(path), "config": summary_of_dir(path)}
    if serve:
        fields["state"] = "LOADED"
    return fields


def desired_state(project: Project, services: ServiceMapper | None = None) -> dict[str, Resource]:
    """Every object the project manages, keyed by address.

    `services` lets a target say which service settings it manages (the local target maps them
    onto PlatformConfig; Kubernetes onto chart values). Default: the project's services as written.
    """
    out: dict[str, Resource] = {}

    def put(res: Resource) -> None:
        out[res.address] = res

    service_fields = services(project) if services else {k: dict(v) for k, v in project.services.items()}
    for name, fields in service_fields.items():
        put(Resource(addr.make("service", name), fields))
    serve = project.services.get("triton", {}).get("enabled", True) is not False
    for m in project.models:
        put(Resource(addr.make("model", m.name), model_fields(m.path, serve), protect=m.lifecycle.protect, where=m.where))
    for p in project.pipelines:
        put(Resource(
            addr.make("pipeline", p.name),
            {"definition": p.definition, "export": list(p.export)},
            protect=p.lifecycle.protect, where=p.where,
        ))
    for a in project.ae_titles:
        put(Resource(addr.make("ae-title", a.ae_title), {
            "pipelines": list(a.pipelines), "group-by": a.group_by,
            "timeout": float(a.timeout), "priority": a.priority,
        }, where=a.where))
    for s in project.sources:
        put(Resource(addr.make("source", s.name), {"ae-title": s.ae_title, "host": s.host}, where=s.where))
    for d in project.destinations:
        put(Resource(addr.make("destination", d.name),
                     {"ae-title": d.ae_title, "host": d.host, "port": int(d.port),
                      **({"tls": True} if d.tls else {})}, where=d.where))      # plain: as before TLS existed
    return out
