"""The FaceStream service on the wire: its name, its handlers, and a request parser that tolerates garbage."""
from __future__ import annotations

from typing import Any, Callable

import grpc

from facestream.proto import pb

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceStream"].full_name


class Undecodable:
    """Stands in for a request whose bytes are not a valid protobuf message of the expected type."""

    def __init__(self, size: int, error: str) -> None:
        self.size, self.error = size, error

    def WhichOneof(self, _group: str) -> str:
        return "undecodable"


def _deserializer(message_type: Any) -> Callable[[bytes], Any]:
    """Parses requests, handing malformed bytes to the service (which answers INVALID_ARGUMENT)
    instead of letting the transport end the call with INTERNAL."""

    def parse(data: bytes) -> Any:
        try:
            return message_type.FromString(data)
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            return Undecodable(len(data), str(exc) or type(exc).__name__)

    return parse


def add_to_server(service: Any, server: grpc.aio.Server) -> None:
    """Registers `service` (Process and GetCapabilities) like the generated helper, with the forgiving parser."""
    handlers = {
        "Process": grpc.stream_stream_rpc_method_handler(
            service.Process, request_deserializer=_deserializer(pb.ProcessRequest),
            response_serializer=pb.ProcessResponse.SerializeToString),
        "GetCapabilities": grpc.unary_unary_rpc_method_handler(
            service.GetCapabilities, request_deserializer=_deserializer(pb.GetCapabilitiesRequest),
            response_serializer=pb.Capabilities.SerializeToString),
    }
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
