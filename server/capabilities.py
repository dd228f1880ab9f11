"""The GetCapabilities answer: codecs, effects, backends with their stage placements, models and limits."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from facestream.engines import backend as backends
from facestream.engines.effects.registry import EFFECTS
from facestream.engines.models.store import default_store
from facestream.proto import pb

from .config import ServerConfig
from .plan import INPUT_CODECS, OUTPUT_CODECS
from .responses import stage_messages


def server_version() -> str:
    try:
        return version("facestream")
    except PackageNotFoundError:
        return "unknown"


def model_messages() -> list[pb.ModelInfo]:
    """The packaged models from the store's manifest: FP32 runs on ONNX Runtime (the CPU backend, and
    the GPU backend without TensorRT), the INT8 Q/DQ models become TensorRT engines."""
    out = []
    for name, sha in sorted(default_store().manifest()["files"].items()):
        stem, _, ext = name.rpartition(".")
        if ext != "onnx":
            continue
        model, _, precision = stem.rpartition(".")
        out.append(pb.ModelInfo(name=model, precision=precision, sha256=sha,
                                runtime="onnxruntime" if precision == "fp32" else "tensorrt"))
    return out


def _backend_messages(config: ServerConfig) -> list[pb.BackendInfo]:
    gpu = backends.probe_gpu()
    cpu = backends.backend_class("cpu")("cpu backend" if gpu.available or config.backend == "cpu"
                                        else f"auto: no usable GPU ({gpu.detail})")
    if gpu.available:
        from facestream.engines.gpu_backend import gpu_plan

        gpu_stages = gpu_plan().placements()
        gpu_detail = (f"{gpu.name}, compute capability {gpu.compute_capability}, {gpu.memory_gb:g} GB, "
                      f"CUDA driver {gpu.driver}; " + "; ".join(f"{p.stage}: {p.engine}" for p in gpu_stages))
    else:
        gpu_stages, gpu_detail = [], gpu.detail
    return [
        pb.BackendInfo(backend=pb.BACKEND_CPU, available=True, device="cpu",
                       detail="PyAV codecs, ONNX Runtime, NumPy/OpenCV", stages=stage_messages(cpu.placements())),
        pb.BackendInfo(backend=pb.BACKEND_GPU, available=gpu.available, device=gpu.device,
                       detail=gpu_detail, stages=stage_messages(gpu_stages)),
    ]


def capabilities(config: ServerConfig) -> pb.Capabilities:
    gpu_on = backends.probe_gpu().available and config.backend in ("auto", "gpu")
    return pb.Capabilities(
        server_version=server_version(),
        input_codecs=INPUT_CODECS,
        output_codecs=OUTPUT_CODECS,
        effects=[
            pb.EffectInfo(
                name=spec.name,
                description=spec.description,
                per_face=spec.per_face,
                params=[pb.EffectParam(name=p.name, min=p.min, max=p.max, default=p.default, description=p.description)
                        for p in spec.params],
            )
            for spec in EFFECTS.values()
        ],
        backends=_backend_messages(config),
        default_backend=pb.BACKEND_GPU if gpu_on else pb.BACKEND_CPU,
        models=model_messages(),
        limits=pb.Limits(
            max_sessions=config.max_sessions,
            max_width=config.max_width,
            max_height=config.max_height,
            max_packet_bytes=config.max_packet_bytes,
            max_faces=config.max_faces,
            max_fps=config.max_fps,
            max_session_seconds=config.max_session_seconds,
        ),
    )
