"""What the benchmark runs: its input clip, goals, effects, sizes and time budgets, in one place so
every section measures the same thing."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from facestream.engines.codec.base import Codec
from facestream.engines.effects.registry import EFFECTS as EFFECT_SPECS

REPO = Path(__file__).resolve().parents[2]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
# The clip's frames 82 to 210 show the singer facing the camera (before, the singer turns away;
# after, an audience): the tiles come from there.
SINGER_FRAMES = range(82, 211)
TILE_PHASE = 15            # frames between changes of the tiles that show the singer
TILE_STRIDE = 32           # clip frames between neighbouring tiles
FPS = 30.0
P99_GOAL_MS = 50.0
GOAL_PIPELINE_OVER_DECODE = 0.8
GOAL_RAW_STREAMS = 60
MAX_FACES = 4
MAX_SIZE = (1920, 1088)    # the server's default frame limit
QUEUE_DEPTH = 4            # frames between stages (the server's default --queue-depth)
OUTPUTS = (Codec.RAW_NV12, Codec.H264, Codec.MJPEG)
RAMPS = (Codec.RAW_NV12, Codec.H264)
EFFECTS = {name: 0.5 for name in EFFECT_SPECS if name != "debug"}
NO_GPU = 3
DISTRIBUTIONS = ("cupy-cuda13x", "cupy-cuda12x", "pynvvideocodec", "av", "onnxruntime", "tensorrt", "tensorrt-cu13",
                 "tensorrt-cu12", "numpy", "grpcio", "torch", "torchvision")
# Seconds per section with the default --budget; each is also cut to what is left of the whole.
BUDGETS = {"input": 20.0, "decode_only": 8.0, "host_encode": 12.0, "pipeline": 45.0, "memory": 10.0,
           "ramp_nv12": 60.0, "ramp_h264": 35.0, "server": 25.0}


@dataclass(frozen=True)
class Scale:
    """How big the run is: the full GPU run, or the smoke run any machine does in seconds."""

    size: tuple[int, int] = (1920, 1080)
    frames: int = 160            # input frames
    warm_frames: int = 3         # each paced session's first frames, before its clock starts
    run_seconds: float = 5.0     # paced run of each ramp step
    decode_repeats: int = 3
    parallel: int = 4            # decoders, encoders at once
    memory_sessions: int = 4
    ramp_start: int = 8
    max_streams: int = 96
    server_streams: int = 2
    budget: float = 235.0


SMOKE = Scale(size=(640, 360), frames=12, warm_frames=2, run_seconds=0.3, decode_repeats=1, parallel=2,
              memory_sessions=2, ramp_start=1, max_streams=2, server_streams=1, budget=200.0)


def section_budget(name: str, scale: Scale) -> float:
    """The section's seconds, in proportion when the whole run has another budget than the default."""
    return BUDGETS[name] * scale.budget / Scale.budget
