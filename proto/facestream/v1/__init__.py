"""Generated stubs of the facestream.v1 wire contract (see facestream.proto)."""
from . import facestream_pb2 as pb
from . import facestream_pb2_grpc as rpc

__all__ = ["pb", "rpc"]
