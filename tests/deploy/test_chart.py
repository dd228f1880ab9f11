"""The Helm chart: it lints, renders with the default and the GPU values (and with every option on),
every manifest passes the Kubernetes schemas of the oldest and newest supported version, and what
it tells the server agrees with the server: setting names, probes, drain, metrics, user."""
from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from prometheus_client import generate_latest

from facestream.client.protocol import SERVICE_NAME
from facestream.server.config import ServerConfig
from facestream.server.metrics import Metrics

from support import REPO

CHART = REPO / "deploy" / "helm" / "facestream"
GPU_VALUES = CHART / "values-gpu.yaml"
KUBERNETES = ("1.27.0", "1.37.0")  # Chart.yaml's kubeVersion floor, and the newest schemas at hand
EVERYTHING = {
    "auth": {"apiKeys": "ops:sha256:" + "0" * 64, "jwtSecret": "s3cret",
             "jwtPublicKey": "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----", "jwtIssuer": "idp"},
    "tls": {"secretName": "facestream-tls", "requireClientCert": True},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "server": {"env": {"FACESTREAM_MAX_WIDTH": "1280"}},
}


def values(path: Path) -> dict[str, Any]:
    return helm.values_from_yaml(path.read_text())


def render(overrides: dict[str, Any] | None = None, **options: Any) -> dict[str, dict[str, Any]]:
    """kind (or kind/name where a kind repeats) -> manifest, as `helm template` would print them."""
    with helm.Chart.load(CHART) as chart:
        if options:  # options the wrapper does not expose (the API versions a cluster offers)
            from helm_python import _native

            out = json.loads(_native.call_string("helm_render", chart._raw(), json.dumps(overrides or {}),
                                                 json.dumps({"name": "fs", "namespace": "media", **options})))
        else:
            out = chart.render(overrides or {}, name="fs", namespace="media")
    docs = [doc for path, text in out.items() if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]
    kinds = [d["kind"] for d in docs]
    return {d["kind"] if kinds.count(d["kind"]) == 1 else f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


def container(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    [c] = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    return c


def env(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifests)["env"]}


@pytest.mark.parametrize("name,overrides", [("defaults", {}), ("gpu", values(GPU_VALUES))])
def test_chart_lints_clean(name, overrides):
    report = helm.lint(CHART, overrides, strict=True, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    assert not problems, problems


@pytest.mark.parametrize("name,overrides", [("defaults", {}), ("gpu", values(GPU_VALUES)), ("everything", EVERYTHING)])
def test_every_manifest_passes_the_kubernetes_schemas(name, overrides):
    manifests = render(overrides)
    assert {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= set(manifests)
    for key, doc in manifests.items():
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # the Prometheus operator's resource: no schema among Kubernetes' own (checked below)
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{name}: {key} is not valid Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_every_setting_the_chart_passes_is_one_the_server_reads():
    settings = {"FACESTREAM_" + f.name.upper() for f in fields(ServerConfig)}
    for overrides in ({}, values(GPU_VALUES), EVERYTHING):
        passed = {name for name in env(render(overrides)) if name.startswith("FACESTREAM_")}
        assert passed - {"FACESTREAM_HOME"} <= settings, passed - settings  # HOME: the model store's


def test_probes_and_drain_follow_the_server():
    manifests = render()
    c = container(manifests)
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    port = next(p["containerPort"] for p in c["ports"] if p["name"] == "grpc")
    assert c["readinessProbe"]["grpc"] == {"port": port, "service": SERVICE_NAME}
    assert c["livenessProbe"]["grpc"] == c["startupProbe"]["grpc"] == {"port": port}
    grace = float(env(manifests)["FACESTREAM_GRACE_SECONDS"])
    pre_stop = float(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace, "the kubelet would kill running streams"
    # The pod runs as the image's user, which needs no root to serve.
    user = re.search(r"^USER (\d+):(\d+)$", (REPO / "deploy" / "Containerfile.cpu").read_text(), re.MULTILINE)
    assert user and (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == tuple(
        map(int, user.groups()))
    headless = manifests["Service/fs-facestream-headless"]["spec"]
    assert headless["clusterIP"] == "None" and not headless.get("publishNotReadyAddresses")


def test_autoscaler_scales_on_the_session_gauge_the_server_exports():
    hpa = render()["HorizontalPodAutoscaler"]["spec"]
    by_type = {m["type"]: m for m in hpa["metrics"]}
    metric = by_type["Pods"]["pods"]["metric"]["name"]
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    [rule] = yaml.safe_load((CHART / "prometheus-adapter-values.yaml").read_text())["rules"]["custom"]
    assert rule["name"]["as"] == metric
    series = rule["seriesQuery"].split("{")[0]
    exported = generate_latest(Metrics().registry).decode()
    assert re.search(rf"^# TYPE {series} gauge$", exported, re.MULTILINE), f"the server exports no gauge {series}"


def test_gpu_values_ask_for_a_gpu_node_and_the_gpu_image():
    manifests = render(values(GPU_VALUES))
    c = container(manifests)
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 and c["image"].endswith(":gpu")
    assert env(manifests)["FACESTREAM_BACKEND"] == "gpu"
    assert manifests["Deployment"]["spec"]["template"]["spec"]["nodeSelector"]


def test_secrets_for_keys_jwt_and_tls():
    manifests = render(EVERYTHING)
    secret = manifests["Secret"]
    assert set(secret["stringData"]) == {"api-keys", "jwt-secret"}
    passed = env(manifests)
    assert passed["FACESTREAM_API_KEYS"]["secretKeyRef"]["name"] == secret["metadata"]["name"]
    assert passed["FACESTREAM_TLS_CLIENT_CA_FILE"] == "/etc/facestream/tls/ca.crt"
    # The kubelet's gRPC probe cannot speak TLS: the image's own probe does, with the pod's certificate.
    readiness = container(manifests)["readinessProbe"]["exec"]["command"]
    assert readiness[:3] == ["python", "-m", "facestream.client.probe"]
    assert f"--service={SERVICE_NAME}" in readiness and "--tls-cert-file=/etc/facestream/tls/tls.crt" in readiness
    # With an existing Secret the chart makes none and reads that one.
    existing = render({"auth": {"existingSecret": "keys"}})
    assert "Secret" not in existing and env(existing)["FACESTREAM_JWT_SECRET"]["secretKeyRef"]["name"] == "keys"


def test_service_monitor_where_the_prometheus_operator_is():
    assert "ServiceMonitor" not in render()  # auto, and this cluster has no such API
    monitor = render(api_versions=["monitoring.coreos.com/v1/ServiceMonitor"])["ServiceMonitor"]
    manifests = render()
    selected = monitor["spec"]["selector"]["matchLabels"]
    [scraped] = [s for s in manifests.values() if s["kind"] == "Service"
                 and selected.items() <= s["metadata"]["labels"].items()]
    assert {p["name"] for p in scraped["spec"]["ports"]} >= {monitor["spec"]["endpoints"][0]["port"]}
