"""The committed stubs are what grpcio-tools generates from the .proto, and import with the pinned versions."""
import subprocess
import sys

from support import REPO


def test_generated_stubs_are_fresh():
    result = subprocess.run([sys.executable, str(REPO / "proto" / "generate.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_stubs_import_with_pinned_runtime():
    from facestream.proto import pb, rpc

    assert pb.DESCRIPTOR.package == "facestream.v1"
    assert hasattr(rpc, "FaceStreamStub")
    assert set(pb.DESCRIPTOR.services_by_name["FaceStream"].methods_by_name) == {"Process", "GetCapabilities"}
