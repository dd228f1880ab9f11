"""INT8 Q/DQ insertion in the form TensorRT accepts, calibration and per-layer sensitivity.

Activations: symmetric per-tensor int8 (zero-point 0), scale = amax / 127 from calibration.
Weights: symmetric per-channel int8 along the output channel (axis 0), zero-point 0.
Only Conv inputs are quantized; which convolutions are quantized is chosen by a sensitivity
analysis against accuracy bars (the rest stay in float: mixed precision).
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper


def conv_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == "Conv"]


def conv_inputs(model: onnx.ModelProto) -> list[str]:
    """Activation tensors feeding convolutions, in graph order, without repeats."""
    seen: dict[str, None] = {}
    for n in conv_nodes(model):
        seen.setdefault(n.input[0], None)
    return list(seen)


def collect_amax(model: onnx.ModelProto, inputs: Iterable[np.ndarray],
                 percentile: float = 99.99) -> dict[str, dict[str, float]]:
    """Runs the float model on `inputs` and records, per conv input tensor, the max |x| and a
    high percentile of |x| (over all calibration samples)."""
    import onnxruntime as ort

    names = conv_inputs(model)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    existing = {o.name for o in m.graph.output}
    for nm in names:
        if nm not in existing:
            m.graph.output.append(helper.make_empty_tensor_value_info(nm))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name
    maxes = {nm: 0.0 for nm in names}
    samples: dict[str, list[np.ndarray]] = {nm: [] for nm in names}
    rng = np.random.default_rng(0)
    for x in inputs:
        outs = sess.run(names, {in_name: x})
        for nm, v in zip(names, outs, strict=True):
            a = np.abs(v).ravel()
            maxes[nm] = max(maxes[nm], float(a.max()))
            take = min(a.size, 20000)
            samples[nm].append(a[rng.choice(a.size, take, replace=False)] if take < a.size else a)
    out = {}
    for nm in names:
        allv = np.concatenate(samples[nm])
        out[nm] = {"max": maxes[nm], "p": float(np.percentile(allv, percentile))}
    return out


def _const(name: str, arr: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(arr, name)


def insert_qdq(model: onnx.ModelProto, amax: dict[str, float], layers: Sequence[str]) -> onnx.ModelProto:
    """Copy of `model` with the convolutions named in `layers` quantized (Q/DQ on the input
    activation with scale amax[input]/127, per-channel int8 weights behind a DequantizeLinear)."""
    q = onnx.ModelProto()
    q.CopyFrom(model)
    g = q.graph
    quantized = set(layers)
    inits = {t.name: t for t in g.initializer}
    new_nodes: list[onnx.NodeProto] = []
    act_done: dict[str, str] = {}
    for node in g.node:
        if node.op_type == "Conv" and node.name in quantized:
            x = node.input[0]
            if x not in act_done:
                a = max(float(amax[x]), 1e-8)
                base = f"{x}_q"
                g.initializer.extend([
                    _const(base + "_scale", np.array(a / 127.0, np.float32)),
                    _const(base + "_zp", np.array(0, np.int8)),
                ])
                new_nodes.append(helper.make_node("QuantizeLinear", [x, base + "_scale", base + "_zp"],
                                                  [base + "_int8"], name=base + "_Q"))
                new_nodes.append(helper.make_node("DequantizeLinear", [base + "_int8", base + "_scale", base + "_zp"],
                                                  [base + "_dq"], name=base + "_DQ"))
                act_done[x] = base + "_dq"
            w_name = node.input[1]
            w = numpy_helper.to_array(inits[w_name]).astype(np.float32)
            wmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
            scale = np.maximum(wmax, 1e-12) / 127.0
            wq = np.clip(np.round(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
            wb = f"{node.name}_w"
            g.initializer.extend([
                _const(wb + "_int8", wq),
                _const(wb + "_scale", scale.astype(np.float32)),
                _const(wb + "_zp", np.zeros(w.shape[0], np.int8)),
            ])
            new_nodes.append(helper.make_node("DequantizeLinear", [wb + "_int8", wb + "_scale", wb + "_zp"],
                                              [wb + "_dq"], name=wb + "_DQ", axis=0))
            node.input[0] = act_done[x]
            node.input[1] = wb + "_dq"
        new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    # float weights no longer used by any node are dropped
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return q


def inference(model: onnx.ModelProto, threads: int = 1):
    """An ONNX Runtime CPU inference of the model in memory (for calibration and checks)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def choose_layers(model: onnx.ModelProto, amax: dict[str, float], error: Callable[[onnx.ModelProto], float],
                  bar: float, log: Callable[[str], None] = print) -> tuple[list[str], dict[str, float]]:
    """Mixed precision by sensitivity: quantize each conv alone and measure `error`; then, from
    the least sensitive convolution on, add each one whose addition keeps the error of the
    whole set within `bar` (the error is a worst case over the evaluation inputs, so a layer
    that breaks it is skipped rather than ending the search). Returns (quantized conv names in
    graph order, per-layer sensitivity)."""
    names = [n.name for n in conv_nodes(model)]
    sens = {nm: float(error(insert_qdq(model, amax, [nm]))) for nm in names}
    order = sorted(names, key=lambda nm: (sens[nm], names.index(nm)))
    chosen: list[str] = []
    for nm in order:
        if sens[nm] > bar:
            continue
        err = float(error(insert_qdq(model, amax, chosen + [nm])))
        if err <= bar:
            chosen.append(nm)
            log(f"  {len(chosen)} convs quantized (+{nm}): error {err:.4f} (bar {bar})")
    keep = set(chosen)
    return [nm for nm in names if nm in keep], sens
