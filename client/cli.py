"""`facestream-client`: process a video through a facestream server from the command line."""
from __future__ import annotations

import argparse
import asyncio
import math
import sys

from tqdm import tqdm

from facestream.proto import pb

from .api import FaceStreamClient, FaceStreamError, FrameResult, parse_effects
from .protocol import SourceError
from .source import VideoSource

_OUTPUT_CODECS = {"h264": pb.CODEC_H264, "hevc": pb.CODEC_HEVC, "mjpeg": pb.CODEC_MJPEG, "nv12": pb.CODEC_RAW_NV12}


def _fitted(source: VideoSource, limits: pb.Limits, fit: bool) -> VideoSource:
    """The source, reopened scaled down when it is larger than the server accepts and `fit` is set.

    Raises ValueError saying what to do when it is too large and `fit` is not set."""
    max_w, max_h = limits.max_width, limits.max_height
    if not max_w or not max_h or (source.width <= max_w and source.height <= max_h):
        return source
    size = f"{source.width}x{source.height}"
    if not fit:
        raise ValueError(f"{source.url!r} is {size}, larger than this server accepts ({max_w}x{max_h}); "
                         f"pass --fit to scale it down to fit")
    source.close()
    fitted = VideoSource(source.url, raw=True, fit=(max_w, max_h))
    print(f"facestream-client: scaled {size} down to {fitted.width}x{fitted.height} to fit the server's "
          f"limit of {max_w}x{max_h}", file=sys.stderr)
    return fitted


async def _process(args: argparse.Namespace) -> int:
    async with FaceStreamClient(args.server) as client:
        try:
            effects = parse_effects(args.effects or "")
            source = VideoSource(args.input, raw=args.raw)
        except ValueError as exc:
            print(f"facestream-client: {exc}", file=sys.stderr)
            return 2
        try:
            source = _fitted(source, (await client.capabilities()).limits, args.fit)
        except ValueError as exc:
            source.close()
            print(f"facestream-client: {exc}", file=sys.stderr)
            return 2
        except FaceStreamError as exc:
            source.close()
            print(f"facestream-client: the server did not answer: {exc}", file=sys.stderr)
            return 1
        return await _run(client, source, effects, args)


async def _run(client: FaceStreamClient, source: VideoSource, effects: dict[str, float],
               args: argparse.Namespace) -> int:
    bar = tqdm(total=source.frames, unit="frame", disable=args.quiet, dynamic_ncols=True)
    latencies: list[float] = []

    def progress(frame: FrameResult) -> None:
        if not math.isnan(frame.latency_ms):
            latencies.append(frame.latency_ms)
        bar.update(1)
        if bar.n % 10 == 0 and latencies:
            recent = sorted(latencies[-100:])
            bar.set_postfix(latency_ms=f"{recent[len(recent) // 2]:.0f}", faces=len(frame.packet.faces))

    try:
        result = await client.process(
            source, output=args.output, output_codec=_OUTPUT_CODECS[args.codec], quality=args.quality,
            effects=effects, faces_json=args.faces_json, return_landmarks=args.landmarks,
            realtime=args.realtime, pace=args.pace, progress=progress,
        )
    except ValueError as exc:
        print(f"facestream-client: {exc}", file=sys.stderr)
        return 2
    except (FaceStreamError, SourceError) as exc:
        what = "the server ended the session: " if isinstance(exc, FaceStreamError) else ""
        print(f"facestream-client: {what}{exc}", file=sys.stderr)
        return 1
    finally:
        bar.close()
        source.close()
    for note in result.started.notes:
        print(f"facestream-client: note from the server: {note}", file=sys.stderr)
    s = result.stats
    print(
        f"{result.frames} frames -> {args.output or '(no output file)'} at {s.fps:.1f} fps "
        f"on {pb.Backend.Name(result.started.backend).removeprefix('BACKEND_').lower()}; "
        f"{s.faces_detected} faces ({s.faces_carried} carried), {s.frames_dropped} dropped, "
        f"{s.frames_passed_through} passed through",
        file=sys.stderr,
    )
    return 0


async def _relay(args: argparse.Namespace) -> int:
    from .relay import RelayError, relay, stderr_log

    try:
        stats = await relay(args.input, args.output, target=args.server, listen=args.listen,
                            effects=parse_effects(args.effects or ""), bitrate_kbps=args.bitrate,
                            realtime=not args.lossless, fmt=args.format, api_key=args.api_key or "", log=stderr_log)
    except (ValueError, RelayError) as exc:
        stderr_log(str(exc))
        return 2 if isinstance(exc, ValueError) else 1
    stderr_log(f"done: {stats}")
    return 0


async def _gst_plugin_path(args: argparse.Namespace) -> int:
    from .gstreamer.install import loader_problem, path_problem, plugin_folder

    print(plugin_folder())
    for problem in filter(None, (loader_problem(), path_problem())):
        print(f"facestream-client: the element will not load: {problem}", file=sys.stderr)
    return 0


async def _capabilities(args: argparse.Namespace) -> int:
    from google.protobuf import json_format

    async with FaceStreamClient(args.server) as client:
        try:
            caps = await client.capabilities()
        except FaceStreamError as exc:
            print(f"facestream-client: {exc}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(caps))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facestream-client", description="Client for a facestream server.")
    parser.add_argument("--server", default="127.0.0.1:50051", help="host:port of the server")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("process", help="process a video (file, URL or device) and write the result")
    p.add_argument("input", help="anything FFmpeg opens: a file, rtmp:// or http:// URL, a device")
    p.add_argument("-o", "--output", help="output file: a video (.mp4, .mkv, ...; .mkv for --codec nv12), or for "
                   "a photo an image (.jpg, .png, ...)")
    p.add_argument("--codec", choices=sorted(_OUTPUT_CODECS), default="h264", help="output codec")
    p.add_argument("--quality", type=int, default=0, help="1..100, higher is better (0: codec default)")
    p.add_argument("--effects", help="comma-separated name=strength, for example smooth=0.6,eyes=0.3")
    p.add_argument("--faces-json", help="write one JSON line per frame with pts and faces")
    p.add_argument("--landmarks", action="store_true", help="include the 468 landmarks in --faces-json")
    p.add_argument("--raw", action="store_true", help="decode here and send raw NV12 frames")
    p.add_argument("--fit", action="store_true",
                   help="scale pictures larger than the server accepts down to fit (keeping the aspect ratio)")
    p.add_argument("--realtime", action="store_true", help="let the server drop work to keep up (real-time policy)")
    p.add_argument("--pace", action="store_true", help="send at the source frame rate, like a camera")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_process)
    c = sub.add_parser("capabilities", help="print what the server supports")
    c.set_defaults(func=_capabilities)
    r = sub.add_parser("relay", help="relay a live stream (RTMP from OBS, say) through the server to OUT_URL, "
                       "the audio passed through")
    r.add_argument("input", help="the stream to read: rtmp://..., or with --listen the address OBS publishes to, "
                   "for example rtmp://127.0.0.1:1935/live/stream")
    r.add_argument("output", help="where the result goes: an rtmp:// or rtmps:// ingest URL with its stream key, "
                   "or a file (.flv, .mkv, .ts, .mp4)")
    r.add_argument("--listen", action="store_true", help="be the RTMP server the encoder publishes to")
    r.add_argument("--effects", help="comma-separated name=strength, for example smooth=0.6,eyes=0.3")
    r.add_argument("--bitrate", type=int, default=0, help="video bitrate in kbit/s (0: constant quality)")
    r.add_argument("--lossless", action="store_true", help="process every frame even when the server falls "
                   "behind (the delay grows); by default late frames go on unprocessed or are left out")
    r.add_argument("--format", help="output container (an FFmpeg name) when OUT_URL does not tell")
    r.add_argument("--api-key", help="sent as x-api-key to a server that requires one")
    r.set_defaults(func=_relay)
    g = sub.add_parser("gst-plugin-path", help="print the folder to add to GST_PLUGIN_PATH for the facestream "
                       "GStreamer element (made for this installation)")
    g.set_defaults(func=_gst_plugin_path)
    # The server address may also follow the subcommand.
    for s in (p, c, r):
        s.add_argument("--server", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return asyncio.run(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
