"""Every message the server sends on a Process stream, and the counts behind its final stats."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facestream.engines.backend import Placement
from facestream.engines.codec.base import output_size
from facestream.engines.pipeline import FrameInFlight
from facestream.engines.stages import FrameStatus
from facestream.engines.vision.face import Face
from facestream.proto import pb

from .errors import SessionError
from .plan import WIRE_CODECS, SessionPlan

WIRE_STATUS = {
    FrameStatus.PROCESSED: pb.FRAME_PROCESSED,
    FrameStatus.PASSED_THROUGH: pb.FRAME_PASSED_THROUGH,
    FrameStatus.DROPPED: pb.FRAME_DROPPED,
}


@dataclass
class SessionStats:
    """What a session has done so far, for its final SessionStats message and the audit log."""

    packets_in: int = 0
    frames_decoded: int = 0
    frames_out: int = 0
    passed_through: int = 0
    dropped: int = 0
    faces: int = 0
    # Faces carried from an earlier frame (real-time policy, or a still face keeping its last mesh; the
    # rest of `faces` are fresh), and the processed frames with at least one.
    faces_carried: int = 0
    frames_carried: int = 0
    updates: int = 0
    timing_sums: dict[str, float] = field(default_factory=dict)

    def record(self, item: FrameInFlight) -> None:
        """Counts a frame sent back."""
        self.frames_out += 1
        self.faces += len(item.faces)
        carried = item.carried_faces
        self.faces_carried += carried
        if carried and item.processed:
            self.frames_carried += 1
        if item.status is FrameStatus.DROPPED:
            self.dropped += 1
        elif item.status is FrameStatus.PASSED_THROUGH:
            self.passed_through += 1
        for name, ms in item.timings.items():
            self.timing_sums[name] = self.timing_sums.get(name, 0.0) + ms


def stage_messages(placements: list[Placement]) -> list[pb.StagePlacement]:
    return [pb.StagePlacement(stage=p.stage, device=p.device, engine=p.engine, reason=p.reason) for p in placements]


def negotiated_config(config: pb.SessionConfig, plan: SessionPlan) -> pb.SessionConfig:
    """The client's config with the server's defaults filled in, as SessionStarted promises."""
    out = pb.SessionConfig()
    out.CopyFrom(config)
    out.output.codec = WIRE_CODECS[plan.encoder.codec]
    out.input.time_base.num, out.input.time_base.den = plan.encoder.time_base
    out.input.frame_rate.num, out.input.frame_rate.den = plan.encoder.frame_rate
    return out


def started_response(session_id: str, config: pb.SessionConfig, plan: SessionPlan, backend: str,
                     placements: list[Placement]) -> pb.ProcessResponse:
    return pb.ProcessResponse(
        started=pb.SessionStarted(
            session_id=session_id,
            config=negotiated_config(config, plan),
            backend=pb.BACKEND_CPU if backend == "cpu" else pb.BACKEND_GPU,
            stages=stage_messages(placements),
            output_width=plan.encoder.width,
            output_height=plan.encoder.height,
            notes=plan.notes,
        )
    )


def face_message(face: Face, landmarks: bool, frame_index: int) -> pb.Face:
    """`frame_index`: of the frame the face is reported with."""
    x0, y0, x1, y1 = (float(v) for v in face.box)
    msg = pb.Face(
        id=face.id,
        box=pb.Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0),
        score=float(face.score),
        keypoints=np.asarray(face.keypoints, np.float32).ravel().tolist(),
        carried=face.carried,
        landmarks_frame=frame_index if face.carried_from is None else face.carried_from,
    )
    if landmarks and face.landmarks is not None:
        msg.landmarks.extend(np.asarray(face.landmarks, np.float32).ravel().tolist())
    return msg


def timings_message(timings: dict[str, float]) -> pb.StageTimings:
    return pb.StageTimings(**{f"{name}_ms": ms for name, ms in timings.items()})


def packet_response(item: FrameInFlight, plan: SessionPlan) -> pb.ProcessResponse:
    frame, packet = item.frame, item.packet
    output_width, output_height = output_size(plan.encoder.codec, *frame.picture_size)
    msg = pb.OutputPacket(
        data=packet.data if packet else b"",
        pts=frame.pts,
        codec=WIRE_CODECS[plan.encoder.codec],
        width=output_width,
        height=output_height,
        keyframe=packet.keyframe if packet else False,
        frame_index=frame.index,
        status=WIRE_STATUS[item.status],
        effects_version=item.effects_version,
        timings=timings_message(item.timings),
    )
    if plan.return_faces:
        msg.faces.extend(face_message(f, plan.return_landmarks, frame.index) for f in item.faces)
    return pb.ProcessResponse(packet=msg)


def stats_response(stats: SessionStats, duration: float) -> pb.ProcessResponse:
    n = max(1, stats.frames_out)
    return pb.ProcessResponse(
        stats=pb.SessionStats(
            packets_in=stats.packets_in,
            frames_decoded=stats.frames_decoded,
            frames_out=stats.frames_out,
            frames_passed_through=stats.passed_through,
            frames_dropped=stats.dropped,
            faces_detected=stats.faces,
            frames_carried=stats.frames_carried,
            faces_fresh=stats.faces - stats.faces_carried,
            faces_carried=stats.faces_carried,
            duration_s=duration,
            fps=stats.frames_out / duration if duration > 0 else 0.0,
            mean_timings=timings_message({name: ms / n for name, ms in stats.timing_sums.items()}),
            effects_updates=stats.updates,
        )
    )


def error_response(exc: SessionError) -> pb.ProcessResponse:
    return pb.ProcessResponse(
        error=pb.StreamError(code=exc.code.value[0], code_name=exc.code.name, message=exc.message)
    )
