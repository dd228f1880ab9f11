"""Exact graph rewrites: the face mesh made fast on ONNX Runtime's CPU provider, and padding
made explicit for the conversion to PyTorch (explicit_pads, applied in memory, never shipped).

ONNX Runtime runs convolutions, Relu and Add in its blocked (NCHWc) layout, but PRelu with
per-channel slopes and Pad have no blocked kernels: each of them reorders the tensor back to
NCHW and runs a slow broadcast loop (in the 468-point mesh, the 23 PRelu alone took half of
the run). Both are rewritten into operations that stay in the blocked layout, with the same
results (every step is exact in float arithmetic):

    PRelu(x, a)                  = Relu(x) + DwConv1x1(Relu(DwConv1x1(x, -1)), -a)
    Pad(x, channels only, zeros) = Conv1x1(x, [0; I; 0])

The TFLite parity tests run on the rewritten graph. TensorRT fuses the same patterns.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference


def _prune_initializers(g: onnx.GraphProto) -> None:
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def prelu_as_relu_convs(model: onnx.ModelProto) -> int:
    """Rewrites every PRelu with a constant per-channel slope in place; returns how many."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    nodes: list[onnx.NodeProto] = []
    done = 0
    for n in g.node:
        if n.op_type != "PRelu" or n.input[1] not in inits:
            nodes.append(n)
            continue
        x, y = n.input[0], n.output[0]
        a = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
        if a.ndim != 4 or a.shape[0] != 1 or a.shape[2:] != (1, 1):
            nodes.append(n)
            continue
        c = a.shape[1]
        b = n.name or y
        g.initializer.extend([
            numpy_helper.from_array(np.full((c, 1, 1, 1), -1.0, np.float32), b + "_neg_w"),
            numpy_helper.from_array((-a).reshape(c, 1, 1, 1), b + "_slope_w"),
        ])
        nodes += [
            helper.make_node("Relu", [x], [b + "_pos"], name=b + "_pos"),
            helper.make_node("Conv", [x, b + "_neg_w"], [b + "_negx"], name=b + "_negx",
                             group=c, kernel_shape=[1, 1]),
            helper.make_node("Relu", [b + "_negx"], [b + "_negr"], name=b + "_negr"),
            helper.make_node("Conv", [b + "_negr", b + "_slope_w"], [b + "_negs"], name=b + "_negs",
                             group=c, kernel_shape=[1, 1]),
            helper.make_node("Add", [b + "_negs", b + "_pos"], [y], name=b + "_sum"),
        ]
        done += 1
    del g.node[:]
    g.node.extend(nodes)
    _prune_initializers(g)
    return done


def _zero_pads(n: onnx.NodeProto, inits: dict[str, np.ndarray]) -> np.ndarray | None:
    """The pads of `n` when it is a Pad with constant pads filling with zeros, else None."""
    if n.op_type != "Pad" or len(n.input) < 2 or n.input[1] not in inits:
        return None
    mode = [a.s for a in n.attribute if a.name == "mode"]
    value = inits.get(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros(())
    if value is None or float(value) != 0.0 or (mode and mode[0] != b"constant"):
        return None
    return inits[n.input[1]]


def _channel_pads(n: onnx.NodeProto, inits: dict[str, np.ndarray], shapes: dict[str, list[int]]
                  ) -> tuple[int, int, int] | None:
    """(channels, pad before, pad after) when `n` is a constant zero Pad of the channel axis only."""
    pads = _zero_pads(n, inits)
    shape = shapes.get(n.input[0]) if pads is not None else None
    if pads is None or len(pads) != 8 or not shape or len(shape) != 4 or shape[1] <= 0:
        return None
    if any(pads[i] for i in (0, 2, 3, 4, 6, 7)):
        return None
    return shape[1], int(pads[1]), int(pads[5])


def channel_pad_as_conv(model: onnx.ModelProto) -> int:
    """Rewrites zero Pads of the channel axis only (BlazeBlock shortcuts) as 1x1 convolutions."""
    inferred = shape_inference.infer_shapes(model)
    gi = inferred.graph
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(gi.value_info) + list(gi.input) + list(gi.output)}
    g = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    nodes: list[onnx.NodeProto] = []
    done = 0
    for n in g.node:
        found = _channel_pads(n, inits, shapes)
        if found is None:
            nodes.append(n)
            continue
        c, lo, hi = found
        w = np.zeros((lo + c + hi, c, 1, 1), np.float32)
        w[lo + np.arange(c), np.arange(c)] = 1.0
        wname = (n.name or n.output[0]) + "_as_conv_w"
        g.initializer.append(numpy_helper.from_array(w, wname))
        nodes.append(helper.make_node("Conv", [n.input[0], wname], [n.output[0]],
                                      name=(n.name or n.output[0]) + "_as_conv", kernel_shape=[1, 1]))
        done += 1
    del g.node[:]
    g.node.extend(nodes)
    _prune_initializers(g)
    return done


def _auto_pads(mode: bytes, size: list[int], kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX's auto_pad as explicit pads (begin..., end...) for an input of spatial `size`."""
    begin, end = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations, strict=True):
        total = 0 if mode == b"VALID" else max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
        lo = total - total // 2 if mode == b"SAME_LOWER" else total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin + end


def _explicit(n: onnx.NodeProto, shapes: dict[str, list[int]]) -> list[int] | None:
    """The pads that `n`'s auto_pad stands for, or None where `n` has no auto_pad to rewrite."""
    attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
    auto = attrs.get("auto_pad", b"NOTSET")
    if n.op_type not in ("Conv", "MaxPool", "AveragePool") or auto == b"NOTSET":
        return None
    size = shapes.get(n.input[0], [])[2:]
    kernel = list(attrs.get("kernel_shape") or shapes.get(n.input[1], [])[2:])
    if not size or min(size) <= 0 or not kernel:
        raise ValueError(f"{n.op_type} {n.name or n.output[0]}: auto_pad needs static input and kernel shapes")
    ones = [1] * len(size)
    return _auto_pads(auto, size, kernel, list(attrs.get("strides", ones)), list(attrs.get("dilations", ones)))


def explicit_pads(model: onnx.ModelProto) -> int:
    """Rewrites auto_pad (SAME_UPPER, SAME_LOWER, VALID) of Conv, MaxPool and AveragePool in place
    into the explicit `pads` it stands for at the model's static input shape (the same windows, so
    exact); returns how many. onnx2torch converts explicit padding only."""
    gi = shape_inference.infer_shapes(model).graph
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(gi.value_info) + list(gi.input)}
    shapes |= {t.name: list(t.dims) for t in gi.initializer}
    done = 0
    for n in model.graph.node:
        pads = _explicit(n, shapes)
        if pads is None:
            continue
        for a in [a for a in n.attribute if a.name in ("auto_pad", "pads")]:
            n.attribute.remove(a)
        n.attribute.append(helper.make_attribute("pads", pads))
        done += 1
    return done


def for_cpu(model: onnx.ModelProto) -> onnx.ModelProto:
    """Both rewrites, in place; returns the model."""
    prelu_as_relu_convs(model)
    channel_pad_as_conv(model)
    return model
