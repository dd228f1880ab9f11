"""A GStreamer application that changes a property while the pipeline plays.

Run with the Python GStreamer's plugin loader embeds: switch_property.py PIPELINE FRAME NAME PROPERTY VALUE.
The property of the element named NAME (a capsfilter's caps, the facestream element's effects) is set
when the FRAME-th buffer reaches the element named `fs`. Prints each frame's "facestream" message as
a JSON line; exits 1 with the error on a pipeline error.
"""
from __future__ import annotations

import json
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

FIELDS = ("timestamp", "frame", "effects-version", "status", "latency-ms", "faces")


def main(description: str, switch_at: int, name: str, prop: str, text: str) -> int:
    Gst.init(None)
    pipeline = Gst.parse_launch(description)
    target = pipeline.get_by_name(name)
    value = Gst.Caps.from_string(text) if prop == "caps" else text
    seen = 0

    def probe(pad, info):
        nonlocal seen
        seen += 1
        if seen == switch_at:
            target.set_property(prop, value)
        return Gst.PadProbeReturn.OK

    pipeline.get_by_name("fs").get_static_pad("sink").add_probe(Gst.PadProbeType.BUFFER, probe)
    pipeline.set_state(Gst.State.PLAYING)
    bus = pipeline.get_bus()
    kinds = Gst.MessageType.ERROR | Gst.MessageType.EOS | Gst.MessageType.ELEMENT
    try:
        while True:
            message = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE, kinds)
            if message.type == Gst.MessageType.ERROR:
                error, debug = message.parse_error()
                print(f"error: {error.message} ({debug})", file=sys.stderr)
                return 1
            if message.type == Gst.MessageType.EOS:
                return 0
            s = message.get_structure()
            if s.get_name() == "facestream":
                print(json.dumps({name: s.get_value(name) for name in FIELDS}), flush=True)
    finally:
        pipeline.set_state(Gst.State.NULL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]))
