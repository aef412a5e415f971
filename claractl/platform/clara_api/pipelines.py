"""Clara's Pipelines service → claractl.platform.operations.pipelines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from claractl.platform.clara_api.answers import ok
from claractl.platform.clara_api.convert import ident, metadata_map
from claractl.platform.clara_api.protos import message as M
from claractl.platform.operations import Context, Invalid
from claractl.platform.operations import pipelines as ops
from claractl.platform.operations.ids import checked_id


def read_definition(requests: Iterable) -> tuple[str, str, str | None, dict[str, str]]:
    """(definition text, its path, requested pipeline id, metadata) from a streamed Create/Update.
    Chunks of one file are joined; claractl takes one definition file per pipeline."""
    parts: list[str] = []
    path, pipeline_id, metadata = None, None, {}
    for req in requests:
        given = req.definition.path or path or "pipeline.yaml"
        if path is not None and given != path:
            raise Invalid(f"claractl takes one pipeline definition file per pipeline; got {path!r} and "
                          f"{given!r}", "pipeline")
        path = given
        parts.append(req.definition.content)
        if req.pipeline_id.value and pipeline_id is None:
            pipeline_id = req.pipeline_id.value
        if hasattr(req, "metadata") and req.metadata and not metadata:
            metadata = dict(req.metadata)
    text = "".join(parts)
    if not text.strip():
        raise Invalid("the request holds no pipeline definition", "pipeline")
    return text, path or "pipeline.yaml", pipeline_id, metadata


class PipelinesService:
    SERVICE, FAMILY = "Pipelines", "pipeline"

    def __init__(self, c: Context) -> None:
        self.c = c

    def Create(self, requests, _context):
        text, path, pipeline_id, metadata = read_definition(requests)
        p = ops.create_from_definition(self.c, text, path, pipeline_id, metadata)
        return M("PipelinesCreateResponse")(header=ok(), pipeline_id=ident(p["id"]))

    def Update(self, requests, _context):
        requests = list(requests)
        text, path, pipeline_id, _ = read_definition(requests)
        ops.update_definition(self.c, checked_id(pipeline_id or "", "pipeline"), text, path)
        return M("PipelinesUpdateResponse")(header=ok())

    def List(self, _request, _context) -> Iterator:
        found = ops.list_pipelines(self.c)
        if not found:
            yield M("PipelinesListResponse")(header=ok())
        for p in found:
            details = M("PipelinesListResponse.PipelineDetails")(pipeline_id=ident(p["id"]), name=p["name"])
            metadata_map(details.metadata, p["metadata"])
            yield M("PipelinesListResponse")(header=ok(), details=details)

    def Details(self, request, _context) -> Iterator:
        p = ops.get_pipeline(self.c, pipeline_id=checked_id(request.pipeline_id.value, "pipeline"))
        out = M("PipelinesDetailsResponse")(
            header=ok(), pipeline_id=ident(p["id"]), name=p["name"],
            definition=M("PipelineDefinitionFile")(path=f"{p['name']}.yaml", content=p["definition_text"]),
            dag=[_dag_node(n) for n in ops.dag(p["definition"])])
        metadata_map(out.metadata, p["metadata"])
        yield out

    def Remove(self, request, _context):
        ops.delete_pipeline(self.c, pipeline_id=checked_id(request.pipeline_id.value, "pipeline"))
        return M("PipelinesRemoveResponse")(header=ok())

    def AddMetadata(self, request, _context):
        pid = checked_id(request.pipeline_id.value, "pipeline")
        out = M("PipelinesAddMetadataResponse")(header=ok(), pipeline_id=request.pipeline_id)
        metadata_map(out.metadata, ops.add_metadata(self.c, pid, dict(request.metadata)))
        return out

    def RemoveMetadata(self, request, _context):
        pid = checked_id(request.pipeline_id.value, "pipeline")
        out = M("PipelinesRemoveMetadataResponse")(header=ok(), pipeline_id=request.pipeline_id)
        metadata_map(out.metadata, ops.remove_metadata(self.c, pid, list(request.keys)))
        return out


def _dag_node(node: dict):
    return M("PipelinesDetailsResponse.PipelineDagNode")(name=node["name"], next=[_dag_node(n) for n in node["next"]])
