"""The committed ct-organs model matches its config.pbtxt and labels.txt (the model contract)."""

import onnx
import tritonclient.grpc.model_config_pb2 as mc
from google.protobuf import text_format

from claractl_operators.ai_inference.grid import grid_from_model
from claractl_operators.common.inference import parse_config
from operator_helpers import MODEL_DIR, MODEL_ONNX
from phantom import LABELS


def load_config():
    return text_format.Parse((MODEL_DIR / "config.pbtxt").read_text(), mc.ModelConfig())


def test_labels_parameter_equals_labels_file():
    cfg = load_config()
    file_labels = [line.strip() for line in (MODEL_DIR / "labels.txt").read_text().splitlines() if line.strip()]
    assert cfg.parameters["labels"].string_value.split(",") == file_labels == list(LABELS)
    assert cfg.output[0].label_filename == "labels.txt"


def test_onnx_graph_matches_config():
    cfg = load_config()
    graph = onnx.load(str(MODEL_ONNX)).graph
    onnx.checker.check_model(onnx.load(str(MODEL_ONNX)))
    dims = lambda v: [d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert [(v.name, dims(v)) for v in graph.input] == [(cfg.input[0].name, list(cfg.input[0].dims))]
    assert [(v.name, dims(v)) for v in graph.output] == [(cfg.output[0].name, list(cfg.output[0].dims))]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert MODEL_ONNX.stat().st_size < 8_000_000


def test_operator_reads_the_grid_from_the_config():
    from google.protobuf.json_format import MessageToDict

    info = parse_config("ct-organs", MessageToDict(load_config(), preserving_proto_field_name=True))
    grid = grid_from_model(info)
    assert (grid.spacing_mm, grid.hu_min, grid.hu_max, grid.patch, grid.num_classes) == (4.0, -200, 300, (64, 64, 64), 4)
    assert info.labels == list(LABELS)
