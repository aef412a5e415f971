"""Clara's Models service → claractl.platform.operations.models.

Models are Triton model directories, uploaded as a zip (Clara's format) and checked like any
claractl model; a model's id is derived from its name. Catalogs and instances are sets of models;
updating an instance loads its models on the inference service.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from claractl.platform.clara_api.answers import ok
from claractl.platform.clara_api.convert import metadata_map
from claractl.platform.clara_api.protos import enum_value, message as M
from claractl.platform.operations import Context, Invalid
from claractl.platform.operations import models as ops
from claractl.platform.operations.ids import checked_id

CHUNK = 1024 * 1024
TYPES = {"tensorflow": "MODEL_TYPE_TENSOR_FLOW", "tensorrt": "MODEL_TYPE_TENSOR_RT", "pytorch": "MODEL_TYPE_PY_TORCH"}


def model_type(platform: str) -> int:
    """Clara's ModelType from config.pbtxt's platform/backend (ONNX has no Clara type: UNKNOWN)."""
    for prefix, name in TYPES.items():
        if platform.lower().startswith(prefix):
            return enum_value("ModelType", name)
    return enum_value("ModelType", "MODEL_TYPE_UNKNOWN")


def details(m: dict[str, Any]):
    out = M("ModelDetails")(model_id=M("Identifier")(value=m["clara_id"]), name=m["name"],
                            type=model_type(m["platform"]))
    metadata_map(out.metadata, m["metadata"])
    return out


def _ident(value: str):
    return M("Identifier")(value=value)


class ModelsService:
    SERVICE, FAMILY = "Models", "model"

    def __init__(self, c: Context) -> None:
        self.c = c

    # -- models ----------------------------------------------------------------------------------
    def ListModels(self, _request, _context) -> Iterator:
        yield M("ModelsListModelsResponse")(header=ok(), models=[details(m) for m in ops.list_models(self.c)])

    def UploadModel(self, requests, _context):
        requests = iter(requests)
        first = next(requests, None)
        if first is None or not first.details.name:
            raise Invalid("UploadModel needs the model's name in its first message's details", "model")
        name = first.details.name
        with ops.upload_area(self.c) as work:
            archive = work / "model.archive"
            with open(archive, "wb") as fh:
                for req in itertools.chain([first], requests):
                    fh.write(req.data)
            model, _created = ops.put_model(self.c, name, archive, metadata=dict(first.details.metadata))
        return M("ModelsUploadModelResponse")(header=ok(), details=details(model))

    def DownloadModel(self, request, _context) -> Iterator:
        model = ops.get_model(self.c, clara=request.model_id.value)
        data = ops.zip_model(self.c, model["name"])
        for start in range(0, max(len(data), 1), CHUNK):
            yield M("ModelsDownloadModelResponse")(header=ok(), details=details(model), data=data[start:start + CHUNK])

    def DeleteModel(self, request, _context):
        ops.delete_model(self.c, clara=request.model_id.value)
        return M("ModelsDeleteModelResponse")(header=ok(), model_id=request.model_id)

    def AddMetadata(self, request, _context):
        out = M("ModelsAddMetadataResponse")(header=ok(), model_id=request.model_id)
        metadata_map(out.metadata, ops.add_metadata(self.c, request.model_id.value, dict(request.metadata)))
        return out

    def RemoveMetadata(self, request, _context):
        out = M("ModelsRemoveMetadataResponse")(header=ok(), model_id=request.model_id)
        metadata_map(out.metadata, ops.remove_metadata(self.c, request.model_id.value, list(request.keys)))
        return out

    # -- catalogs and instances ------------------------------------------------------------------
    def CreateCatalog(self, _request, _context):
        return M("ModelsCreateCatalogResponse")(header=ok(), catalog_id=_ident(ops.create_set(self.c, "catalog")))

    def CreateInstance(self, _request, _context):
        return M("ModelsCreateInstanceResponse")(header=ok(), instance_id=_ident(ops.create_set(self.c, "instance")))

    def ListCatalogs(self, _request, _context) -> Iterator:
        yield M("ModelsListCatalogsResponse")(header=ok(), catalogs=[
            M("ModelCatalogDetails")(catalog_id=_ident(s["id"]), models=[details(m) for m in s["models"]])
            for s in ops.list_sets(self.c, "catalog")])

    def ListInstances(self, _request, _context) -> Iterator:
        yield M("ModelsListInstancesResponse")(header=ok(), instances=[
            M("ModelCatalogDetails")(catalog_id=_ident(s["id"]), models=[details(m) for m in s["models"]])
            for s in ops.list_sets(self.c, "instance")])

    def ReadCatalog(self, request, _context) -> Iterator:
        set_id = checked_id(request.catalog_id.value, "catalog")
        yield M("ModelsReadCatalogResponse")(header=ok(), catalog_id=request.catalog_id,
                                             models=[details(m) for m in ops.read_set(self.c, "catalog", set_id)])

    def ReadInstance(self, request, _context) -> Iterator:
        set_id = checked_id(request.instance_id.value, "instance")
        yield M("ModelsReadInstanceResponse")(header=ok(), instance_id=request.instance_id,
                                              models=[details(m) for m in ops.read_set(self.c, "instance", set_id)])

    def UpdateCatalog(self, requests, _context):
        return self._update("catalog", requests, "ModelsUpdateCatalogResponse", "catalog_id")

    def UpdateInstance(self, requests, _context):
        return self._update("instance", requests, "ModelsUpdateInstanceResponse", "instance_id")

    def _update(self, kind: str, requests, response: str, field: str):
        set_id, model_ids = None, []
        for req in requests:
            set_id = set_id or getattr(req, field).value
            model_ids += [m.value for m in req.model_ids]
        done = ops.update_set(self.c, kind, checked_id(set_id or "", kind), model_ids)
        return M(response)(header=ok(), **{field: _ident(done)})

    def DeleteCatalog(self, request, _context):
        done = ops.delete_set(self.c, "catalog", checked_id(request.catalog_id.value, "catalog"))
        return M("ModelsDeleteCatalogResponse")(header=ok(), catalog_id=_ident(done))

    def DeleteInstance(self, request, _context):
        done = ops.delete_set(self.c, "instance", checked_id(request.instance_id.value, "instance"))
        return M("ModelsDeleteInstanceResponse")(header=ok(), instance_id=_ident(done))
