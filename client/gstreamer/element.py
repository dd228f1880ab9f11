"""The `facestream` GStreamer element: raw NV12 or I420 video in, the same video with its faces beautified out.

Each picture goes to a facestream session and the processed one comes back in a buffer with the
input's timestamps and flags. Several frames are in flight at once: buffers are pushed from a thread
of the element's own as their results arrive, in order, with the events that came between them, so
the element adds the server's processing time and no more. A live upstream gets the server's
real-time drop policy (a frame the server drops goes on unprocessed). The faces of each frame are
posted as an element message named "facestream" (fields: timestamp, running-time, frame,
effects-version, status, latency-ms, faces as the JSON list `facestream-client process --faces-json`
writes) and attached to the buffer as region-of-interest metas of type "face".
"""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass

import gi
import grpc

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, GObject, Gst, GstVideo  # noqa: E402

from facestream.proto import pb  # noqa: E402

from ..live import LiveResult, raw_config  # noqa: E402
from ..protocol import FaceStreamError, face_dict, parse_effects  # noqa: E402
from .frames import FORMATS, Layout  # noqa: E402
from .remote import RemoteSession  # noqa: E402

Gst.init(None)

CAPS = Gst.Caps.from_string(f"video/x-raw, format=(string){{ {', '.join(FORMATS)} }}, width=(int)[ 1, 32767 ], "
                            "height=(int)[ 1, 32767 ], framerate=(fraction)[ 0/1, 2147483647/1 ]")
STATUS = {pb.FRAME_PROCESSED: "processed", pb.FRAME_PASSED_THROUGH: "passed-through", pb.FRAME_DROPPED: "dropped"}
RW = GObject.ParamFlags.READWRITE
MUTABLE = GObject.ParamFlags.READWRITE | Gst.PARAM_MUTABLE_PLAYING


@dataclass
class _Frame:
    """A buffer whose picture is at the server: what the output buffer needs when its result comes."""

    seq: int
    stamps: _Stamps      # the input buffer's, for the output (the input itself goes back to its pool)
    data: bytes          # the picture as sent, passed on as it is when the server drops the frame
    layout: Layout
    session: RemoteSession
    sent_at: float
    result: LiveResult | None = None
    arrived_at: float = 0.0


@dataclass(frozen=True)
class _Stamps:
    pts: int
    dts: int
    duration: int
    offset: int
    offset_end: int
    flags: Gst.BufferFlags

    @classmethod
    def of(cls, buf: Gst.Buffer) -> _Stamps:
        return cls(buf.pts, buf.dts, buf.duration, buf.offset, buf.offset_end, buf.get_flags())

    def apply(self, buf: Gst.Buffer) -> None:
        buf.pts, buf.dts, buf.duration = self.pts, self.dts, self.duration
        buf.offset, buf.offset_end = self.offset, self.offset_end
        buf.set_flags(self.flags)


def _uint64(value: int) -> GObject.Value:
    return GObject.Value(GObject.TYPE_UINT64, value)


def _is_serialized(flags: int, serialized: int) -> bool:
    return bool(flags & serialized)


PROPERTIES = {
    "server": (str, "Server", "host:port of the facestream server", "127.0.0.1:50051", RW),
    "effects": (str, "Effects", "comma-separated name=strength, for example smooth=0.5,eyes=0.3; "
                "changes while playing apply from a later frame (its message's effects-version says which)",
                "", MUTABLE),
    "api-key": (str, "API key", "sent as x-api-key to a server that requires one", "", RW),
    "latency": (int, "Latency", "milliseconds of processing time reported to the pipeline "
                "(a frame that takes longer arrives late at a live sink)", 0, 60000, 200, RW),
    "max-in-flight": (int, "Frames in flight", "frames at the server or waiting to be pushed before "
                      "upstream is blocked", 1, 120, 8, RW),
    "timeout": (float, "Timeout", "seconds to wait for the server to start a session", 0.1, 600.0, 10.0, RW),
    "faces": (bool, "Faces", "post each frame's faces as a message and attach them as metas", True, RW),
}


class FaceStream(Gst.Element):
    __gtype_name__ = "GstFaceStream"
    __gstmetadata__ = ("Facestream face beautification", "Filter/Effect/Video",
                       "Beautifies the faces in raw video through a facestream server", "facestream")
    __gsttemplates__ = (Gst.PadTemplate.new("sink", Gst.PadDirection.SINK, Gst.PadPresence.ALWAYS, CAPS),
                        Gst.PadTemplate.new("src", Gst.PadDirection.SRC, Gst.PadPresence.ALWAYS, CAPS))
    __gproperties__ = PROPERTIES

    def __init__(self) -> None:
        super().__init__()
        self.sinkpad = Gst.Pad.new_from_template(self.get_pad_template("sink"), "sink")
        self.sinkpad.set_chain_function_full(self._chain)
        self.sinkpad.set_event_function_full(self._sink_event)
        self.sinkpad.set_query_function_full(self._sink_query)
        self.srcpad = Gst.Pad.new_from_template(self.get_pad_template("src"), "src")
        self.srcpad.set_query_function_full(self._src_query)
        self.add_pad(self.sinkpad)
        self.add_pad(self.srcpad)
        self._settings: dict[str, object] = {name: spec[-2] for name, spec in PROPERTIES.items()}
        self._cond = threading.Condition()
        self._items: deque[_Frame | Gst.Event] = deque()   # what goes downstream, in order
        self._waiting: dict[int, _Frame] = {}              # frames whose result has not come
        self._queued = 0                                   # frames in _items
        self._flushing = True
        self._pushing = False
        self._failed = False
        self._flow = Gst.FlowReturn.OK
        self._pusher: threading.Thread | None = None
        self._layout: Layout | None = None
        self._fps = 30.0
        self._session: RemoteSession | None = None
        self._sessions: list[RemoteSession] = []
        self._seq = 0
        self._segment = Gst.Segment()
        self._segment.init(Gst.Format.TIME)

    # -- properties ------------------------------------------------------------------------------

    def do_get_property(self, prop: GObject.ParamSpec) -> object:
        return self._settings[prop.name]

    def do_set_property(self, prop: GObject.ParamSpec, value: object) -> None:
        self._settings[prop.name] = value
        if prop.name == "effects" and self._session is not None:
            try:
                self._session.update_effects(parse_effects(str(value)))
            except ValueError as exc:
                self._post(Gst.Message.new_warning, Gst.CoreError.quark(), Gst.CoreError.FAILED,
                           f"effects={value!r}: {exc}; the frames keep the previous settings")

    def _setting(self, name: str):
        return self._settings[name]

    # -- messages ---------------------------------------------------------------------------------

    def _post(self, make, domain: int, code, text: str, debug: str = "") -> None:
        self.post_message(make(self, GLib.Error.new_literal(domain, text, int(code)), debug))

    def _fail(self, text: str, debug: str = "", code=Gst.ResourceError.FAILED) -> None:
        """Posts an error (once) and stops the flow: the streaming thread returns ERROR from then on."""
        with self._cond:
            first = not self._failed
            self._failed = True
            self._cond.notify_all()
        if first:
            self._post(Gst.Message.new_error, Gst.ResourceError.quark(), code, text, debug)

    def _frame_message(self, frame: _Frame, packet: pb.OutputPacket, status: str) -> Gst.Message:
        s = Gst.Structure.new_empty("facestream")
        s.set_value("timestamp", _uint64(frame.stamps.pts))
        s.set_value("running-time", _uint64(self._segment.to_running_time(Gst.Format.TIME, frame.stamps.pts)))
        s.set_value("frame", _uint64(frame.seq))
        s.set_value("effects-version", GObject.Value(GObject.TYPE_UINT, packet.effects_version))
        s.set_value("status", status)
        s.set_value("latency-ms", (frame.arrived_at - frame.sent_at) * 1000.0)
        s.set_value("faces", json.dumps([face_dict(f) for f in packet.faces]))
        return Gst.Message.new_element(self, s)

    # -- sessions -----------------------------------------------------------------------------------

    def _is_live(self) -> bool:
        query = Gst.Query.new_latency()
        return bool(self.sinkpad.peer_query(query) and query.parse_latency()[0])

    def _open_session(self, layout: Layout) -> RemoteSession | None:
        """A session for pictures of this layout, or None after posting why the server did not start one."""
        self._close_ended()
        server = str(self._setting("server"))
        try:
            effects = parse_effects(str(self._setting("effects")))
        except ValueError as exc:
            self._fail(f"effects={self._setting('effects')!r}: {exc}", code=Gst.ResourceError.SETTINGS)
            return None
        config = raw_config(layout.width, layout.height, effects=effects, fps=self._fps, realtime=self._is_live(),
                            faces=bool(self._setting("faces")), label="gstreamer")
        config.input.codec = layout.codec
        session = RemoteSession(server, config, api_key=str(self._setting("api-key")), on_result=self._on_result,
                                on_end=lambda exc: self._on_end(session, exc))
        try:
            session.start(float(self._setting("timeout")))
        except FaceStreamError as exc:
            session.close()
            hint = " (is the server running there? the element's server property gives its host:port)" \
                if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) else ""
            self._fail(f"could not start a facestream session at {server}: {exc}{hint}",
                       code=Gst.ResourceError.OPEN_READ_WRITE)
            return None
        self._session = session
        self._sessions.append(session)
        return session

    def _end_session(self) -> None:
        """The frames sent so far are all: the session's results still come, then it ends."""
        if self._session is not None:
            self._session.end()
            self._session = None

    def _close_ended(self) -> None:
        for session in [s for s in self._sessions if s.ended.is_set()]:
            session.close()
            self._sessions.remove(session)

    def _close_sessions(self) -> None:
        self._session = None
        for session in self._sessions:
            session.close()
        self._sessions.clear()

    def _on_result(self, result: LiveResult) -> None:
        with self._cond:
            frame = self._waiting.pop(result.packet.pts, None)
            if frame is not None:
                frame.result, frame.arrived_at = result, time.perf_counter()
                self._cond.notify_all()

    def _on_end(self, session: RemoteSession, exc: FaceStreamError | None) -> None:
        with self._cond:
            missing = sum(1 for f in self._waiting.values() if f.session is session)
            if self._flushing or (exc is None and not missing):
                return
        reason = str(exc) if exc else f"it ended the session with {missing} frames unanswered"
        self._fail(f"the facestream server at {session.target} ended the session: {reason}")

    # -- the streaming thread ------------------------------------------------------------------

    def _state(self) -> Gst.FlowReturn:
        """What the streaming thread returns now, other than OK: flushing, a failure, or downstream's answer."""
        if self._flushing:
            return Gst.FlowReturn.FLUSHING
        return Gst.FlowReturn.ERROR if self._failed else self._flow

    def _chain(self, pad: Gst.Pad, parent: Gst.Object, buf: Gst.Buffer) -> Gst.FlowReturn:
        with self._cond:
            state = self._state()
        if state != Gst.FlowReturn.OK:
            return state
        if self._layout is None:
            return Gst.FlowReturn.NOT_NEGOTIATED
        layout = self._layout
        session = self._session or self._open_session(layout)
        if session is None:
            return Gst.FlowReturn.ERROR
        # a copy (not a mapping): no view of GStreamer's memory outlives the call
        data = self._input_layout(buf, layout).pack(buf.extract_dup(0, buf.get_size()))
        with self._cond:
            while self._queued >= int(self._setting("max-in-flight")) and self._state() == Gst.FlowReturn.OK:
                self._cond.wait()
            if (state := self._state()) != Gst.FlowReturn.OK:
                return state
            self._seq += 1
            frame = _Frame(self._seq, _Stamps.of(buf), data, layout, session, time.perf_counter())
            self._waiting[frame.seq] = frame
            self._items.append(frame)
            self._queued += 1
            self._cond.notify_all()
        session.send(data, frame.seq)
        return Gst.FlowReturn.OK

    @staticmethod
    def _input_layout(buf: Gst.Buffer, layout: Layout) -> Layout:
        """The caps' layout, or the one a video meta on the buffer gives (rows padded otherwise)."""
        meta = GstVideo.buffer_get_video_meta(buf)
        if meta is None:
            return layout
        planes = len(layout.offsets)
        return Layout(layout.format, layout.width, layout.height, tuple(meta.offset[:planes]),
                      tuple(meta.stride[:planes]))

    def _set_caps(self, caps: Gst.Caps) -> bool:
        info = GstVideo.VideoInfo.new_from_caps(caps)
        if info is None or info.finfo.name not in FORMATS:
            return False
        planes = info.finfo.n_planes
        layout = Layout(info.finfo.name, info.width, info.height, tuple(info.offset[:planes]),
                        tuple(info.stride[:planes]), info.size)
        if layout != self._layout:
            self._end_session()   # a new picture size or format needs a new session
        self._layout = layout
        self._fps = info.fps_n / info.fps_d if info.fps_n > 0 and info.fps_d > 0 else 30.0
        return True

    def _sink_event(self, pad: Gst.Pad, parent: Gst.Object, event: Gst.Event) -> bool:
        kind = event.type
        if kind == Gst.EventType.FLUSH_START:
            return self._flush_start(event)
        if kind == Gst.EventType.FLUSH_STOP:
            return self._flush_stop(event)
        if kind == Gst.EventType.CAPS and not self._set_caps(event.parse_caps()):
            return False
        if not _is_serialized(Gst.EventType.get_flags(kind), Gst.EventTypeFlags.SERIALIZED):
            return Gst.Pad.event_default(pad, parent, event)
        if kind == Gst.EventType.EOS:
            self._end_session()
        with self._cond:
            if self._flushing:
                return False
            self._items.append(event)
            self._cond.notify_all()
        return True

    def _flush_start(self, event: Gst.Event) -> bool:
        with self._cond:
            self._flushing = True
            self._cond.notify_all()
        ok = self.srcpad.push_event(event)
        self._close_sessions()
        return ok

    def _flush_stop(self, event: Gst.Event) -> bool:
        with self._cond:
            while self._pushing:
                self._cond.wait()
            self._items.clear()
            self._waiting.clear()
            self._queued = 0
            self._flow = Gst.FlowReturn.OK
            self._flushing = False
            self._cond.notify_all()
        return self.srcpad.push_event(event)

    def _wait_drained(self) -> None:
        with self._cond:
            while (self._items or self._pushing) and self._state() == Gst.FlowReturn.OK:
                self._cond.wait()

    def _sink_query(self, pad: Gst.Pad, parent: Gst.Object, query: Gst.Query) -> bool:
        kind = query.type
        if kind == Gst.QueryType.CAPS:
            return Gst.Pad.proxy_query_caps(pad, query)
        if kind == Gst.QueryType.ACCEPT_CAPS:
            return Gst.Pad.proxy_query_accept_caps(pad, query)
        if kind == Gst.QueryType.ALLOCATION:
            return False   # output buffers are the element's own; upstream allocates as it likes
        if _is_serialized(Gst.QueryType.get_flags(kind), Gst.QueryTypeFlags.SERIALIZED):
            self._wait_drained()   # a drain (or other serialized query) follows the frames before it
        return Gst.Pad.query_default(pad, parent, query)

    def _src_query(self, pad: Gst.Pad, parent: Gst.Object, query: Gst.Query) -> bool:
        kind = query.type
        if kind == Gst.QueryType.LATENCY:
            if not self.sinkpad.peer_query(query):
                return False
            live, low, high = query.parse_latency()
            ours = int(self._setting("latency")) * Gst.MSECOND
            query.set_latency(live, low + ours, high if high == Gst.CLOCK_TIME_NONE else high + ours)
            return True
        if kind == Gst.QueryType.CAPS:
            return Gst.Pad.proxy_query_caps(pad, query)
        if kind == Gst.QueryType.ACCEPT_CAPS:
            return Gst.Pad.proxy_query_accept_caps(pad, query)
        return Gst.Pad.query_default(pad, parent, query)

    # -- the pushing thread -------------------------------------------------------------------------

    def _next(self) -> _Frame | Gst.Event | None:
        """The next thing to push once it is ready; None when the element stops."""
        with self._cond:
            while self._pusher is not None:
                head = self._items[0] if self._items and not self._flushing and not self._failed else None
                if isinstance(head, Gst.Event) or (head is not None and head.result is not None):
                    self._items.popleft()
                    if isinstance(head, _Frame):
                        self._queued -= 1
                    self._pushing = True
                    self._cond.notify_all()
                    return head
                self._cond.wait()
            return None

    def _push_loop(self) -> None:
        while (item := self._next()) is not None:
            try:
                if isinstance(item, Gst.Event):
                    if item.type == Gst.EventType.SEGMENT:
                        self._segment = item.parse_segment().copy()
                    self.srcpad.push_event(item)
                    continue
                flow = self.srcpad.push(self._output(item))
                if flow != Gst.FlowReturn.OK:
                    with self._cond:
                        self._flow = flow
            finally:
                with self._cond:
                    self._pushing = False
                    self._cond.notify_all()

    def _output(self, frame: _Frame) -> Gst.Buffer:
        assert frame.result is not None   # _next hands on only frames whose result came
        packet = frame.result.packet
        if packet.data:
            data = frame.layout.unpack(packet.data, "NV12")
        else:   # dropped by the real-time policy: the picture goes on unprocessed
            data = frame.layout.unpack(frame.data, frame.layout.format)
        buf = Gst.Buffer.new_allocate(None, len(data), None)
        buf.fill(0, data)
        frame.stamps.apply(buf)
        if self._setting("faces"):
            for face in packet.faces:
                box = face.box
                meta = GstVideo.buffer_add_video_region_of_interest_meta(
                    buf, "face", max(0, round(box.x)), max(0, round(box.y)), round(box.width), round(box.height))
                meta.id = face.id
            self.post_message(self._frame_message(frame, packet, STATUS.get(packet.status, "processed")))
        return buf

    # -- states ---------------------------------------------------------------------------------------

    def do_change_state(self, transition: Gst.StateChange) -> Gst.StateChangeReturn:
        if transition == Gst.StateChange.READY_TO_PAUSED:
            with self._cond:
                self._flushing, self._failed, self._flow = False, False, Gst.FlowReturn.OK
                self._pusher = threading.Thread(target=self._push_loop, name="facestream-push", daemon=True)
                self._pusher.start()
        elif transition == Gst.StateChange.PAUSED_TO_READY:
            self._stop()
        return Gst.Element.do_change_state(self, transition)

    def _stop(self) -> None:
        with self._cond:
            pusher, self._pusher = self._pusher, None
            self._flushing = True
            self._cond.notify_all()
        self._close_sessions()
        if pusher is not None and pusher is not threading.current_thread():
            pusher.join()
        with self._cond:
            self._items.clear()
            self._waiting.clear()
            self._queued = 0
        self._layout = None


GObject.type_register(FaceStream)
FACTORY = ("facestream", Gst.Rank.NONE, FaceStream)
