"""The fixed batch sizes the device runners run each model at, and a model file rewritten for one.

The face mesh is built at batch 1 and 8: its graph has no batch-coupled op once its two reshapes
take the batch. The detectors stay at batch 1: their in-graph decoding and suppression flatten the
anchors of one image, so a batch of detector inputs runs one image after the other.
"""
from __future__ import annotations

import numpy as np

from .specs import SPECS

MESH_BATCHES = (1, 8)


def model_batches(model: str) -> tuple[int, ...]:
    """The batch sizes `model` ("short", "full" or "mesh") is built at."""
    return MESH_BATCHES if SPECS[model].kind == "mesh" else (1,)


def with_batch(onnx_bytes: bytes, batch: int) -> bytes:
    """The model with a fixed batch of `batch`: input dim 0 and every Reshape target whose first
    entry is 1 rewritten (valid for the landmark model, whose graph is per-sample otherwise)."""
    if batch == 1:
        return onnx_bytes
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    for t in list(g.input) + list(g.output):
        dims = t.type.tensor_type.shape.dim
        if dims and dims[0].dim_value == 1:
            dims[0].dim_value = batch
    inits = {i.name: i for i in g.initializer}
    for node in g.node:
        if node.op_type == "Reshape" and node.input[1] in inits:
            init = inits[node.input[1]]
            shape = numpy_helper.to_array(init).copy()
            if shape.size and shape[0] == 1:
                shape[0] = batch
                init.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), init.name))
    for vi in g.value_info:
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].dim_value == 1:
            dims[0].dim_value = batch
    return model.SerializeToString()
