"""The ONNX graphs the TensorRT builder builds engines from (models/tensorrt.py: the packaged INT8
files at every batch size the runner builds, and the FP32 files it can build too) use only what
TensorRT 10 parses into a static, explicitly quantized engine. Runs on the CPU: no TensorRT needed.

What TensorRT 10 supports comes from onnx-tensorrt's operator matrix, docs/operators.md
(https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md), as published for the
TensorRT 10 releases: "TensorRT 10.0 supports operators in the inclusive range of opset 9 to
opset 20" (10.15: to opset 24), the per-operator "Y"/"N" column and its restrictions column.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper, shape_inference

from facestream.engines.models.batches import model_batches, with_batch
from facestream.engines.models.specs import SPECS
from facestream.engines.models.store import ModelStore

# TensorRT 10.0's opset range (later 10.x releases parse more, never less).
TRT10_OPSETS = range(9, 21)
# Operators the matrix marks "Y" for TensorRT 10 that models like these use; a new operator in
# a graph must be looked up there and added here with its restrictions checked below.
TRT10_OPS = {
    "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv", "ConvTranspose",
    "DequantizeLinear", "Div", "Exp", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "Greater", "HardSigmoid",
    "HardSwish", "Identity", "LeakyRelu", "Less", "MatMul", "Max", "MaxPool", "Min", "Mul", "Pad", "PRelu",
    "QuantizeLinear", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Resize", "Sigmoid",
    "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "TopK", "Transpose", "Unsqueeze", "Where",
}
# Quantization TensorRT does not take: it builds INT8 only from explicit Q/DQ pairs ("N" in the matrix).
DYNAMIC_QUANTIZATION = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearConv", "QLinearMatMul"}
# Outputs whose shape depends on the data: parsed by TensorRT 10 (NonZero, NonMaxSuppression) or
# not (Unique, Compress), but none has a place in a fixed-shape engine replayed from a CUDA graph.
DATA_DEPENDENT_SHAPES = {"NonZero", "NonMaxSuppression", "Unique", "Compress", "Loop", "If", "Scan"}
# Inputs that set shapes, counts or axes: constant (initializers) so every shape is known at build
# time; the matrix requires it of TopK's K, Slice's axes, the reductions' axes, Squeeze/Unsqueeze.
SHAPE_INPUTS = {"Reshape": (1,), "TopK": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3), "Resize": (1, 2, 3),
                "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMean": (1,), "ReduceMin": (1,), "Squeeze": (1,),
                "Unsqueeze": (1,), "Split": (1,), "Clip": (1, 2)}
RESIZE_MODES = {"nearest", "linear"}
RESIZE_COORDINATES = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
TOPK_MAX = 3840


def _variants() -> list[tuple[str, str, int]]:
    return [(m, "int8", b) for m in SPECS for b in model_batches(m)] + [(m, "fp32", 1) for m in SPECS]


@pytest.fixture(scope="module", params=_variants(), ids=lambda v: f"{v[0]}-{v[1]}-b{v[2]}")
def graph(request) -> tuple[onnx.ModelProto, str, int]:
    model, precision, batch = request.param
    onnx_bytes = with_batch(ModelStore().read(model, precision), batch)
    return onnx.load_from_string(onnx_bytes), precision, batch


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _dims(value: onnx.ValueInfoProto) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]


def test_opset_is_one_tensorrt_10_parses(graph):
    model, _, _ = graph
    domains = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    assert set(domains) == {"ai.onnx"}, f"custom operator domains: {domains}"
    assert domains["ai.onnx"] in TRT10_OPSETS
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)


def test_every_operator_is_supported_by_tensorrt_10(graph):
    model, _, _ = graph
    ops = {n.op_type for n in model.graph.node}
    assert not ops & DYNAMIC_QUANTIZATION, ops & DYNAMIC_QUANTIZATION
    assert not ops & DATA_DEPENDENT_SHAPES, ops & DATA_DEPENDENT_SHAPES
    assert ops <= TRT10_OPS, f"not in the TensorRT 10 list: {sorted(ops - TRT10_OPS)}"


def test_inputs_and_outputs_have_static_shapes(graph):
    model, _, batch = graph
    g = model.graph
    for v in list(g.input) + list(g.output):
        dims = _dims(v)
        assert dims and all(isinstance(d, int) and d > 0 for d in dims), f"{v.name}: {dims}"
    assert _dims(g.input[0])[0] == batch and all(_dims(o)[0] == batch for o in g.output)


def test_every_intermediate_shape_is_static(graph):
    """Shape inference with constant propagation finds a fixed shape for every tensor: no
    Shape-dependent or data-dependent dimension anywhere, so the engine is built for one shape."""
    model, _, _ = graph
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]        # derived again from the inputs, not taken from the file
    inferred = shape_inference.infer_shapes(bare, strict_mode=True, data_prop=True)
    values = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    produced = [o for n in model.graph.node for o in n.output if o]
    unknown = [name for name in produced if name not in values]
    dynamic = [(name, _dims(values[name])) for name in produced if name in values
               and not all(isinstance(d, int) and d > 0 for d in _dims(values[name]))]
    # a scalar (rank 0) is static; only tensors whose shape could not be inferred are not
    dynamic = [(name, dims) for name, dims in dynamic if dims]
    assert not unknown and not dynamic, (unknown[:5], dynamic[:5])


def test_shapes_counts_and_axes_are_constants(graph):
    model, _, _ = graph
    inits = {t.name for t in model.graph.initializer}
    loose = [(n.op_type, n.name, n.input[i]) for n in model.graph.node for i in SHAPE_INPUTS.get(n.op_type, ())
             if i < len(n.input) and n.input[i] and n.input[i] not in inits]
    assert not loose, loose


def test_operator_restrictions_of_tensorrt_10(graph):
    model, _, _ = graph
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "TopK":
            assert _attr(n, "sorted", 1) == 1 and int(inits[n.input[1]].reshape(-1)[0]) < TOPK_MAX
        elif n.op_type == "Resize":
            assert _attr(n, "mode", b"nearest").decode() in RESIZE_MODES
            assert _attr(n, "coordinate_transformation_mode", b"half_pixel").decode() in RESIZE_COORDINATES
            assert not _attr(n, "antialias", 0)
        elif n.op_type in ("MaxPool", "AveragePool"):
            assert len(_attr(n, "kernel_shape")) in (2, 3) and len([o for o in n.output if o]) == 1
            assert all(d == 1 for d in _attr(n, "dilations", []))
        elif n.op_type == "Conv":
            assert len(_attr(n, "kernel_shape")) in (2, 3)


def _links(model: onnx.ModelProto) -> tuple[dict[str, onnx.NodeProto], dict[str, list[onnx.NodeProto]]]:
    """Each tensor's producing node, and each tensor's consuming nodes."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    return producer, consumers


def test_int8_files_are_explicit_qdq_pairs(graph):
    """Q/DQ as TensorRT builds strongly typed INT8 from: every QuantizeLinear feeds only
    DequantizeLinear nodes with the same constant scale and a zero point of 0, and every
    quantized convolution reads a dequantized activation and dequantized weights."""
    model, precision, _ = graph
    ops = [n.op_type for n in model.graph.node]
    if precision != "int8":
        assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops
        return
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer, consumers = _links(model)
    quantize = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize
    for n in quantize:
        scale, zero = inits[n.input[1]], inits[n.input[2]]
        assert zero.dtype == np.int8 and not zero.any() and (scale > 0).all(), n.name
        users = consumers[n.output[0]]
        assert users and all(u.op_type == "DequantizeLinear" and list(u.input[1:]) == list(n.input[1:])
                             for u in users), n.name
    quantized = [n for n in model.graph.node if n.op_type == "Conv" and n.input[1] not in inits]
    assert quantized and all(producer[n.input[0]].op_type == "DequantizeLinear"
                             and producer[n.input[1]].op_type == "DequantizeLinear" for n in quantized)


def test_int8_weights_are_dequantized_per_output_channel(graph):
    """Every DequantizeLinear not behind a QuantizeLinear dequantizes constant INT8 weights,
    symmetric (zero point 0), one positive scale per output channel (axis 0)."""
    model, _, _ = graph
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer, _ = _links(model)
    for n in model.graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits:
            assert n.op_type != "DequantizeLinear" or producer[n.input[0]].op_type == "QuantizeLinear", n.name
            continue
        weights, scale, zero = (inits[i] for i in n.input[:3])
        assert weights.dtype == np.int8 and zero.dtype == np.int8 and not zero.any(), n.name
        assert _attr(n, "axis", 1) == 0 and scale.shape == (weights.shape[0],) and (scale > 0).all(), n.name


def test_detector_suppression_is_fixed_shape(graph):
    """The detectors' decoding and suppression (models/postprocess.py) end in fixed-size outputs:
    TOP_K candidates with score 0 where suppressed, never a variable number of rows."""
    model, _, batch = graph
    outputs = {o.name: _dims(o) for o in model.graph.output}
    if "scores" not in outputs:
        assert outputs == {"landmarks": [batch, 468, 3], "face_score": [batch, 1]}
        return
    k = outputs["scores"][1]
    assert outputs["boxes"] == [batch, k, 4] and outputs["keypoints"] == [batch, k, 6, 2]
    assert "NonMaxSuppression" not in {n.op_type for n in model.graph.node}
