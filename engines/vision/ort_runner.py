"""A model runner on ONNX Runtime's CPU provider, over host NumPy batches."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.specs import ModelSpec


class OrtRunner:
    """Runs `spec`'s model on a shared ONNX Runtime inference (from the model store).

    The packaged models take one input at a time: a batch runs row by row. The inference is the
    store's and outlives the runner, so closing a runner releases nothing.
    """

    def __init__(self, ort: Any, spec: ModelSpec) -> None:
        self.ort = ort
        self.spec = spec
        self._names = list(spec.outputs)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        rows = [self.ort.run(self._names, {"input": batch[i:i + 1]}) for i in range(len(batch))]
        if len(rows) == 1:
            return dict(zip(self._names, rows[0], strict=True))
        return {name: np.concatenate([r[j] for r in rows]) for j, name in enumerate(self._names)}

    def close(self) -> None:
        """Nothing to release: the inference belongs to the store."""
