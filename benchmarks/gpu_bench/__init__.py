"""GPU benchmark: in one run on one device, NVDEC-only decode, the host-encode fallback, the full
pipeline per output codec with per-stage GPU times, GPU memory per session, how many paced
1080p30 streams hold p99 <= 50 ms for raw NV12 and for H.264 output, and a check through a real
server and real clients.

    python -m facestream.benchmarks.gpu_bench [--out gpu_bench.json] [--budget 235]
    python -m facestream.benchmarks.gpu_bench --backend cpu --smoke --out smoke.json   # on any machine

Input: a 2x2 tiling of the shared clip (FACESTREAM_MEDIA) at 1920x1080, 1 to 4 tiles showing the
singer (the number and places change every half second; each tile at another point of the part
of the clip where the singer faces the camera, the others plain grey), so 1 to 4 faces a frame;
encoded once with PyAV/libx264 at start-up (no B-frames).
Every section uses all effects the server offers except `debug`.

Sections (each with a time budget inside --budget; the JSON is rewritten after each one, so a run
cut short keeps what it measured):
  input        the tiled clip (an MP4, read back as Annex-B access units)
  decode_only  the decoder alone (NVDEC on the gpu backend), one session and several at once
  host_encode  the fallback encode without NVENC: the frame copied device -> pinned host, libx264
               with FFmpeg's automatic threads (one slice thread per core); one encoder and several
  pipeline     per output codec (nv12, h264, mjpeg), one session: decode + vision, effects and
               encode overlapping in three threads as the server runs them (the throughput), and a
               serial pass with CUDA events around each stage on the session's stream (GPU time per
               stage) and the wall time of each stage call
  memory       GPU memory per added session (CuPy pool, PyTorch allocator, nvidia-smi)
  ramp_nv12    paced 1080p30 sessions in this process (engine stages, no gRPC), N doubled, then
  ramp_h264    bisected: N holds when every frame of every session is processed and p99 latency
               (packet due -> output packet ready) is <= 50 ms
  server       a real server in this process and real SDK clients over gRPC: paced streams per
               output codec, the client's latency and the server's stage timings
  goals        full pipeline >= 0.8x NVDEC with raw output; >= 60 streams with raw output; the
               H.264 figure with what bounds it (the host encoder's cores)

Exit status: 0; 1 when a section failed; 3 for the gpu backend without a GPU (the JSON says why).

Modules: config (input, goals, sizes, budgets), tiled_input (the input), codec_limits (decode_only,
host_encode), pipeline, memory, stream_ramp (ramp_nv12, ramp_h264), server_check (server), summary
(goals and the printed summary), cli (the order of the sections, the command line); session,
environment, report and stats are what they share.
"""
