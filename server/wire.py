"""The FaceStream service on the wire: its name, its handlers, and a request parser that tolerates garbage.

Requests are parsed on the event loop, so what parsing costs must not grow with what a client
sends: only a packet may be large (its bytes are copied, not walked), and any other request over
MAX_SETTINGS_BYTES is refused unparsed. A config or effects update holds a few effects, for the
frame and for each of a bounded number of faces (plan.MAX_PER_FACE): a few KiB at most.
"""
from __future__ import annotations

from typing import Any, Callable

import grpc

from facestream.proto import pb

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceStream"].full_name
# Largest request that is not a packet (a config, an effects update).
MAX_SETTINGS_BYTES = 64 << 10
# Room for the protobuf framing around the largest packet the server accepts.
MESSAGE_OVERHEAD = 64 << 10
# Wire tags of ProcessRequest.packet (field 2, length-delimited), of Packet.data (1, length-delimited)
# and Packet.pts (2, varint); the names of ProcessRequest's fields by number.
_PACKET_TAG, _DATA_TAG, _PTS_TAG = 0x12, 0x0A, 0x10
_FIELDS = {1: "config", 2: "packet", 3: "effects_update", 4: "end"}


class Undecodable:
    """Stands in for a request whose bytes are not a valid protobuf message of the expected type."""

    kind = "undecodable"

    def __init__(self, size: int, error: str) -> None:
        self.size, self.error = size, error

    def WhichOneof(self, _group: str) -> str:
        return self.kind


class Oversized(Undecodable):
    """Stands in for a request other than a packet over MAX_SETTINGS_BYTES, left unparsed."""

    kind = "oversized"

    def __init__(self, size: int, field: str) -> None:
        super().__init__(size, f"a request of {size} bytes that is not one plain packet (it starts with {field}) "
                               f"is over the limit of {MAX_SETTINGS_BYTES} bytes for configs and effects updates")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """The varint at `at` and the offset after it; (-1, at) when there is none (at most 10 bytes)."""
    value = shift = 0
    for i in range(at, min(at + 10, len(data))):
        value |= (data[i] & 0x7F) << shift
        if not data[i] & 0x80:
            return value, i + 1
        shift += 7
    return -1, at


def _plain_packet(data: bytes, at: int) -> bool:
    """Whether the Packet message from `at` to the end holds its data and pts, each at most once, and nothing
    else (each field repeated or unknown would be parsed one by one)."""
    seen = set()
    while at < len(data):
        tag, at = _varint(data, at)
        if tag in seen:
            return False
        seen.add(tag)
        if tag not in (_DATA_TAG, _PTS_TAG):
            return False
        value, at = _varint(data, at)
        if value < 0:
            return False
        if tag == _DATA_TAG:  # a length, then the bytes
            at += value
    return at == len(data)


def _one_packet(data: bytes) -> bool:
    """Whether `data` is a ProcessRequest holding one plain packet and nothing else."""
    if not data or data[0] != _PACKET_TAG:
        return False
    length, start = _varint(data, 1)
    return length >= 0 and start + length == len(data) and _plain_packet(data, start)


def _first_field(data: bytes) -> str:
    tag, _ = _varint(data, 0)
    return _FIELDS.get(tag >> 3, "request") if tag > 0 else "request"


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    """Parses requests, handing malformed bytes to the service (which answers INVALID_ARGUMENT)
    instead of letting the transport end the call with INTERNAL."""

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            return Undecodable(len(data), str(exc) or type(exc).__name__)

    return parse


_parse_process_request = _deserializer(pb.ProcessRequest)


def parse_request(data: bytes) -> Any:
    """A ProcessRequest, or an Undecodable (Oversized) saying why not."""
    if len(data) > MAX_SETTINGS_BYTES and not _one_packet(data):
        return Oversized(len(data), _first_field(data))
    return _parse_process_request(data)


def add_to_server(service: Any, server: grpc.aio.Server) -> None:
    """Registers `service` (Process and GetCapabilities) like the generated helper, with the forgiving parser."""
    handlers = {
        "Process": grpc.stream_stream_rpc_method_handler(
            service.Process, request_deserializer=parse_request,
            response_serializer=pb.ProcessResponse.SerializeToString),
        "GetCapabilities": grpc.unary_unary_rpc_method_handler(
            service.GetCapabilities, request_deserializer=_deserializer(pb.GetCapabilitiesRequest),
            response_serializer=pb.Capabilities.SerializeToString),
    }
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
