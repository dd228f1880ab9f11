"""Health, opt-in reflection, Prometheus metrics and JSON logs of a real server."""
from __future__ import annotations

import asyncio
import io
import json
import logging

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from facestream.server import logs

from fs_helpers import END, clip_packets, free_port, h264_config, scrape, stream

SERVICES = {"facestream.v1.FaceStream", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}


def _list_services(port: int):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        db = ProtoReflectionDescriptorDatabase(ch)
        services = set(db.get_services())
        # grpcurl-style describe: the method and its streaming shape.
        methods = db.FindFileContainingSymbol("facestream.v1.FaceStream").service[0].method
        return services, next(m for m in methods if m.name == "Process")


async def test_reflection_lists_services_when_enabled(server_factory):
    on = await server_factory(reflection=True)
    off = await server_factory()
    services, process = await asyncio.to_thread(_list_services, on.port)
    assert services == SERVICES
    assert process.client_streaming and process.server_streaming
    with pytest.raises(grpc.RpcError) as info:
        await asyncio.to_thread(_list_services, off.port)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_health_and_metrics_move(server_factory):
    port = free_port()
    srv = await server_factory(metrics_port=port)
    url = f"http://127.0.0.1:{port}/metrics"
    before = scrape(url)
    assert before["facestream_sessions_active"] == 0 and before["facestream_model_ready"] == 1
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        health = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="facestream.v1.FaceStream"))
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        packets = clip_packets(12)
        ok = await stream(ch, [h264_config(), *packets, END])
        bad = await stream(ch, [h264_config(), END, END])
    assert ok.code == grpc.StatusCode.OK and bad.code == grpc.StatusCode.INVALID_ARGUMENT
    after = scrape(url)
    delta = lambda k: after.get(k, 0) - before.get(k, 0)  # noqa: E731
    assert delta("facestream_packets_in_total") == 12
    assert delta("facestream_frames_in_total") == 12
    assert delta('facestream_frames_out_total{status="processed"}') == 12
    assert delta('facestream_sessions_total{code="OK"}') == 1
    assert delta('facestream_errors_total{code="INVALID_ARGUMENT"}') == 1
    assert delta('facestream_stage_seconds_count{stage="decode"}') == 12
    assert delta('facestream_stage_seconds_count{stage="encode"}') == 12
    assert after['facestream_queue_depth{queue="in"}'] == 0
    assert 'facestream_drops_total{kind="dropped"}' in after
    assert after["facestream_sessions_active"] == 0


async def test_json_logs_carry_the_session_id(server_factory):
    stream_out = io.StringIO()
    handler = logging.StreamHandler(stream_out)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.SessionFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        srv = await server_factory()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
            out = await stream(ch, [h264_config(label="cam-3"), *clip_packets(3), END])
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    sid = out.responses[0].started.session_id
    records = [json.loads(line) for line in stream_out.getvalue().splitlines()]
    mine = [r for r in records if r.get("session_id") == sid]
    assert {r["logger"] for r in mine} >= {"facestream.service", "facestream.audit"}
    audit = next(r for r in mine if r["logger"] == "facestream.audit")
    assert audit["ended"] == {"code": "OK", "message": ""} and audit["asked"]["label"] == "cam-3"
    assert audit["principal"] == "anonymous" and audit["frames_out"] == 3 and audit["time"].endswith("Z")
