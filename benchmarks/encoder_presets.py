"""Time, size and quality of libx264 presets on the same decoded frames, to choose the server's.

Every preset encodes the clip's frames at the same CRF with the server's other settings
(zerolatency, no B-frames, 2 s GOP); prints ms per frame, bytes and mean PSNR of the decoded
result, each also as a ratio to the server's preset, measured in the same run.

    python benchmarks/encoder_presets.py [--clip PATH] [--crf 23] [--out results/encoder-presets.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facestream.engines.codec.cpu import SINGLE_THREAD_PIXELS

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "short_hamilton_clip.mp4"
SERVER_PRESET = "superfast"


def decoded(clip: Path) -> list[np.ndarray]:
    with av.open(str(clip)) as c:
        return [f.to_ndarray(format="nv12") for f in c.decode(video=0)]


def encode(frames: list[np.ndarray], preset: str, crf: int, threads: int) -> tuple[float, int, list[bytes]]:
    h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    ctx = av.CodecContext.create("libx264", "w")
    ctx.pix_fmt, ctx.width, ctx.height = "nv12", w, h
    ctx.time_base, ctx.framerate, ctx.gop_size, ctx.max_b_frames = Fraction(1, 30), Fraction(30), 60, 0
    ctx.thread_count = threads
    ctx.options = {"preset": preset, "tune": "zerolatency", "repeat-headers": "1", "crf": str(crf)}
    ctx.open()
    packets = []
    start = time.perf_counter()
    for i, a in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(a, format="nv12")
        vf.pts = i
        packets += [bytes(p) for p in ctx.encode(vf)]
    packets += [bytes(p) for p in ctx.encode(None)]
    ms = (time.perf_counter() - start) / len(frames) * 1000
    return ms, sum(map(len, packets)), packets


def mean_psnr(frames: list[np.ndarray], packets: list[bytes]) -> float:
    dec = av.CodecContext.create("h264", "r")
    out = [f.to_ndarray(format="nv12") for p in packets for f in dec.decode(av.Packet(p))]
    out += [f.to_ndarray(format="nv12") for f in dec.decode(None)]
    h = frames[0].shape[0] * 2 // 3
    mse = [np.mean((a[:h].astype(np.float64) - b[:h]) ** 2) for a, b in zip(frames, out, strict=True)]
    return float(np.mean([10 * np.log10(255 ** 2 / max(m, 1e-9)) for m in mse]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--out", type=Path, help="also write the table as Markdown here")
    args = ap.parse_args()
    frames = decoded(args.clip)
    h, w = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
    threads = 1 if w * h <= SINGLE_THREAD_PIXELS else 0
    rows = []
    for preset in ("veryfast", "superfast", "ultrafast"):
        encode(frames[:30], preset, args.crf, threads)   # warm-up
        ms, size, packets = encode(frames, preset, args.crf, threads)
        rows.append((preset, ms, size, mean_psnr(frames, packets)))
    ref = next(r for r in rows if r[0] == SERVER_PRESET)
    lines = [f"libx264 presets on {args.clip.name} ({w}x{h}, {len(frames)} frames), CRF {args.crf}, "
             f"{threads or 'auto'} thread(s), zerolatency; ratios to {SERVER_PRESET} (the server's preset) "
             "from the same run", "",
             "| preset | ms/frame | time ratio | kB | size ratio | luma PSNR dB |",
             "| --- | --- | --- | --- | --- | --- |"]
    for preset, ms, size, psnr in rows:
        lines.append(f"| {preset} | {ms:.2f} | {ms / ref[1]:.2f} | {size // 1024} | {size / ref[2]:.2f} | {psnr:.2f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"
        args.out.write_text(f"# libx264 preset choice\n\nMeasured {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())} "
                            f"on {machine}, PyAV {av.__version__}.\n\n{text}\n")


if __name__ == "__main__":
    main()
