"""Detector post-processing as ONNX ops with fixed shapes, and a NumPy reference of it.

The graph part decodes the SSD anchors (box and 6 keypoints), takes the top K candidates and
suppresses overlaps in matrix form (a candidate is dropped when a higher-scoring valid candidate
overlaps it by more than NMS_IOU), then blends each kept box with the candidates it overlaps,
weighted by score (MediaPipe's weighted NMS). Every output has a fixed shape; suppressed or
low-scoring rows have score 0. No data-dependent shapes, so TensorRT can build it into one
engine and ONNX Runtime runs the same graph.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .specs import MIN_SCORE, NMS_IOU, RAW_SCORE_LIMIT, TOP_K, ModelSpec, ssd_anchors

INPUT = "input"
DET_OUTPUTS = ("scores", "boxes", "keypoints", "raw_regressors", "raw_scores")
MESH_OUTPUTS = ("landmarks", "face_score")


def _rename_input(graph: onnx.GraphProto, new: str) -> None:
    old = graph.input[0].name
    if old == new:
        return
    graph.input[0].name = new
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _coord_matrix() -> np.ndarray:
    """Maps a decoded row (cx, cy, w, h, k0x, k0y, ...) to (x0, y0, x1, y1, k0x, k0y, ...)."""
    m = np.zeros((16, 16), np.float32)
    m[0, 0] = m[0, 2] = 1.0
    m[1, 1] = m[1, 3] = 1.0
    m[2, 0], m[2, 2] = -0.5, 0.5
    m[3, 1], m[3, 3] = -0.5, 0.5
    for i in range(4, 16):
        m[i, i] = 1.0
    return m


def append_detector_postprocess(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    g = model.graph
    _rename_input(g, INPUT)
    outs = {tuple(d.dim_value for d in o.type.tensor_type.shape.dim)[-1]: o.name for o in g.output}
    reg_name, cls_name = outs[16], outs[1]
    anchors = ssd_anchors(spec)
    n, k, s = len(anchors), min(TOP_K, len(anchors)), float(spec.size)
    m = _coord_matrix()
    offsets = np.zeros((n, 16), np.float32)
    offsets[:, 0:2] = anchors
    for i in range(4, 16, 2):
        offsets[:, i:i + 2] = anchors
    inits = {
        "pp_shape_n16": np.array([n, 16], np.int64),
        "pp_shape_n": np.array([n], np.int64),
        "pp_coord_w": (m / s).astype(np.float32),
        "pp_coord_b": (offsets @ m).astype(np.float32),
        "pp_lo": np.array(-RAW_SCORE_LIMIT, np.float32),
        "pp_hi": np.array(RAW_SCORE_LIMIT, np.float32),
        "pp_k": np.array([k], np.int64),
        "pp_min_score": np.array(MIN_SCORE, np.float32),
        "pp_iou": np.array(NMS_IOU, np.float32),
        "pp_eps": np.array(1e-9, np.float32),
        "pp_one": np.array(1.0, np.float32),
        "pp_lower": np.tril(np.ones((k, k), np.float32), -1),
        "pp_shape_1k": np.array([1, k], np.int64),
        "pp_axes1": np.array([1], np.int64),
        "pp_shape_box": np.array([1, k, 4], np.int64),
        "pp_shape_kp": np.array([1, k, 6, 2], np.int64),
        "pp_s0": np.array([0], np.int64), "pp_s1": np.array([1], np.int64),
        "pp_s2": np.array([2], np.int64), "pp_s3": np.array([3], np.int64),
        "pp_s4": np.array([4], np.int64), "pp_s16": np.array([16], np.int64),
    }
    for name, arr in inits.items():
        g.initializer.append(numpy_helper.from_array(arr, name))
    N = helper.make_node
    nodes = [
        N("Reshape", [reg_name, "pp_shape_n16"], ["pp_reg"]),
        N("MatMul", ["pp_reg", "pp_coord_w"], ["pp_reg_m"]),
        N("Add", ["pp_reg_m", "pp_coord_b"], ["pp_coords"]),                # (N, 16)
        N("Reshape", [cls_name, "pp_shape_n"], ["pp_logit"]),
        N("Clip", ["pp_logit", "pp_lo", "pp_hi"], ["pp_logit_c"]),
        N("Sigmoid", ["pp_logit_c"], ["pp_score"]),
        N("TopK", ["pp_score", "pp_k"], ["pp_vals", "pp_idx"], axis=0, largest=1, sorted=1),
        N("Gather", ["pp_coords", "pp_idx"], ["pp_c"], axis=0),             # (K, 16)
    ]
    # box columns as (K, 1) and their transposes (1, K)
    for j, nm in enumerate(("x0", "y0", "x1", "y1")):
        nodes.append(N("Slice", ["pp_c", f"pp_s{j}", f"pp_s{j + 1}" if j < 3 else "pp_s4", "pp_axes1"],
                       [f"pp_{nm}"]))
        nodes.append(N("Reshape", [f"pp_{nm}", "pp_shape_1k"], [f"pp_{nm}t"]))
    nodes += [
        N("Min", ["pp_x1", "pp_x1t"], ["pp_ix1"]), N("Max", ["pp_x0", "pp_x0t"], ["pp_ix0"]),
        N("Min", ["pp_y1", "pp_y1t"], ["pp_iy1"]), N("Max", ["pp_y0", "pp_y0t"], ["pp_iy0"]),
        N("Sub", ["pp_ix1", "pp_ix0"], ["pp_iw_"]), N("Relu", ["pp_iw_"], ["pp_iw"]),
        N("Sub", ["pp_iy1", "pp_iy0"], ["pp_ih_"]), N("Relu", ["pp_ih_"], ["pp_ih"]),
        N("Mul", ["pp_iw", "pp_ih"], ["pp_inter"]),                          # (K, K)
        N("Sub", ["pp_x1", "pp_x0"], ["pp_w"]), N("Sub", ["pp_y1", "pp_y0"], ["pp_h"]),
        N("Mul", ["pp_w", "pp_h"], ["pp_area"]),                             # (K, 1)
        N("Reshape", ["pp_area", "pp_shape_1k"], ["pp_areat"]),
        N("Add", ["pp_area", "pp_areat"], ["pp_asum"]),
        N("Sub", ["pp_asum", "pp_inter"], ["pp_union_"]),
        N("Max", ["pp_union_", "pp_eps"], ["pp_union"]),
        N("Div", ["pp_inter", "pp_union"], ["pp_iou_m"]),
        N("Greater", ["pp_iou_m", "pp_iou"], ["pp_over_b"]),
        N("Cast", ["pp_over_b"], ["pp_over"], to=TensorProto.FLOAT),
        N("Greater", ["pp_vals", "pp_min_score"], ["pp_valid_b"]),
        N("Cast", ["pp_valid_b"], ["pp_valid"], to=TensorProto.FLOAT),      # (K,)
        N("Reshape", ["pp_valid", "pp_shape_1k"], ["pp_validt"]),
        N("Mul", ["pp_over", "pp_validt"], ["pp_ov"]),
        N("Mul", ["pp_ov", "pp_lower"], ["pp_ovl"]),
        N("ReduceMax", ["pp_ovl"], ["pp_sup"], axes=[1], keepdims=0),       # (K,)
        N("Sub", ["pp_one", "pp_sup"], ["pp_nsup"]),
        N("Mul", ["pp_valid", "pp_nsup"], ["pp_keep"]),
        N("Mul", ["pp_vals", "pp_keep"], ["pp_kept_scores"]),
        N("Reshape", ["pp_kept_scores", "pp_shape_1k"], ["scores"]),
        N("Mul", ["pp_valid", "pp_vals"], ["pp_vw"]),
        N("Reshape", ["pp_vw", "pp_shape_1k"], ["pp_vwt"]),
        N("Mul", ["pp_over", "pp_vwt"], ["pp_wm"]),                         # (K, K)
        N("ReduceSum", ["pp_wm", "pp_axes1"], ["pp_wsum_"], keepdims=1),
        N("Max", ["pp_wsum_", "pp_eps"], ["pp_wsum"]),
        N("MatMul", ["pp_wm", "pp_c"], ["pp_bl_"]),
        N("Div", ["pp_bl_", "pp_wsum"], ["pp_bl"]),                         # (K, 16)
        N("Slice", ["pp_bl", "pp_s0", "pp_s4", "pp_axes1"], ["pp_bbox"]),
        N("Reshape", ["pp_bbox", "pp_shape_box"], ["boxes"]),
        N("Slice", ["pp_bl", "pp_s4", "pp_s16", "pp_axes1"], ["pp_bkp"]),
        N("Reshape", ["pp_bkp", "pp_shape_kp"], ["keypoints"]),
        N("Identity", [reg_name], ["raw_regressors"]),
        N("Identity", [cls_name], ["raw_scores"]),
    ]
    g.node.extend(nodes)
    del g.output[:]
    F = TensorProto.FLOAT
    g.output.extend([
        helper.make_tensor_value_info("scores", F, [1, k]),
        helper.make_tensor_value_info("boxes", F, [1, k, 4]),
        helper.make_tensor_value_info("keypoints", F, [1, k, 6, 2]),
        helper.make_tensor_value_info("raw_regressors", F, [1, n, 16]),
        helper.make_tensor_value_info("raw_scores", F, [1, n, 1]),
    ])
    return model


def append_mesh_postprocess(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    _rename_input(g, INPUT)
    by_size = {int(np.prod([d.dim_value for d in o.type.tensor_type.shape.dim])): o.name for o in g.output}
    lm_name, flag_name = by_size[1404], by_size[1]
    g.initializer.append(numpy_helper.from_array(np.array([1, 468, 3], np.int64), "pp_shape_lm"))
    g.initializer.append(numpy_helper.from_array(np.array([1, 1], np.int64), "pp_shape_11"))
    g.node.extend([
        helper.make_node("Reshape", [lm_name, "pp_shape_lm"], ["landmarks"]),
        helper.make_node("Reshape", [flag_name, "pp_shape_11"], ["pp_flag"]),
        helper.make_node("Sigmoid", ["pp_flag"], ["face_score"]),
    ])
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, 468, 3]),
        helper.make_tensor_value_info("face_score", TensorProto.FLOAT, [1, 1]),
    ])
    return model


# ---------------------------------------------------------------- NumPy reference (MediaPipe)

def decode_reference(raw_reg: np.ndarray, raw_cls: np.ndarray, spec: ModelSpec) -> list[dict]:
    """MediaPipe's decoding and weighted NMS in plain NumPy, on raw model outputs.

    Returns detections (best first) as dicts with `box` (x0, y0, x1, y1), `keypoints` (6, 2) and
    `score`, in [0, 1] coordinates of the model input.
    """
    anchors = ssd_anchors(spec)
    pts = raw_reg.reshape(-1, 8, 2).astype(np.float64) / spec.size
    pts[:, 0] += anchors
    pts[:, 2:] += anchors[:, None, :]
    center, size = pts[:, 0].copy(), pts[:, 1].copy()
    boxes = np.concatenate([center - size / 2, center + size / 2], axis=1)
    kps = pts[:, 2:]
    logits = np.clip(raw_cls.reshape(-1).astype(np.float64), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)
    scores = 1.0 / (1.0 + np.exp(-logits))
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] > MIN_SCORE]
    out: list[dict] = []
    remaining = list(order)
    while remaining:
        first = remaining[0]
        ious = np.array([iou(boxes[first], boxes[j]) for j in remaining])
        group = [j for j, v in zip(remaining, ious, strict=True) if v > NMS_IOU]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        kp = (kps[group] * w[:, :, None]).sum(0) / w.sum()
        out.append({"box": box, "keypoints": kp, "score": float(scores[first])})
        remaining = [j for j, v in zip(remaining, ious, strict=True) if v <= NMS_IOU]
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
