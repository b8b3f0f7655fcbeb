"""deploy/k8s: render each overlay with kubectl's kustomize and check what a deployment relies on.

scripts/check_k8s.sh validates the same output against the Kubernetes schemas and checkov;
these tests check what neither knows: the probes reach the health port the service is told
to open, the GPU overlay really asks for GPUs, no secret is written in the manifests, the
NetworkPolicy guards the Embedder, every VOXCACHE_* name is one the service reads, and the
memory limits sit above the RSS scripts/measure_rss.sh measured.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.common.config import env_names
from services.embedder.settings import EmbedderSettings
from services.synthesizer.settings import SynthesizerSettings

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu")
SETTINGS: dict[str, type] = {"embedder": EmbedderSettings, "synthesizer": SynthesizerSettings}
HEALTH_SERVICE = {"embedder": "voxcache.v1.Embedder", "synthesizer": "voxcache.v1.Synthesizer"}


def kubectl() -> str:
    """Debian's pinned kubectl (scripts/setup_k8s.sh unpacks it), else one on PATH."""
    pinned = REPO / "tools" / "kubectl" / "usr" / "bin" / "kubectl"
    found = str(pinned) if pinned.exists() else shutil.which("kubectl")
    if found is None:
        pytest.skip("no kubectl: run scripts/setup_k8s.sh")
    return found


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    rendered = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / request.param)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return request.param, [doc for doc in yaml.safe_load_all(rendered) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def container(objects: list[dict[str, Any]], service: str) -> dict[str, Any]:
    (only,) = find(objects, "Deployment", service)["spec"]["template"]["spec"]["containers"]
    return only


def env_value(c: dict[str, Any], name: str) -> str:
    (entry,) = [e for e in c["env"] if e["name"] == name]
    return entry["value"]


def secret_env_names() -> set[str]:
    return {
        name
        for cls in SETTINGS.values()
        for f in dataclasses.fields(cls)
        if f.metadata.get("secret")
        for name in env_names(cls, f.name)
    }


def test_every_object_is_there_and_namespaced(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    for kind, name in [
        ("Deployment", "embedder"),
        ("Deployment", "synthesizer"),
        ("Service", "embedder"),
        ("Service", "synthesizer"),
        ("HorizontalPodAutoscaler", "synthesizer"),
        ("PodDisruptionBudget", "embedder"),
        ("PodDisruptionBudget", "synthesizer"),
        ("NetworkPolicy", "embedder"),
        ("ConfigMap", "voxcache-config"),
    ]:
        assert find(objects, kind, name)["metadata"]["namespace"] == "voxcache"
    hpa = find(objects, "HorizontalPodAutoscaler", "synthesizer")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "synthesizer"}


def test_probes_are_native_grpc_on_the_health_port(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    for service in SETTINGS:
        c = container(objects, service)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        told = int(env_value(c, f"VOXCACHE_{service.upper()}_HEALTH_PORT"))
        assert ports["health"] == told
        assert int(env_value(c, f"VOXCACHE_{service.upper()}_PORT")) == ports["grpc"] != told
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert set(c[probe]) & {"grpc", "exec", "httpGet", "tcpSocket"} == {"grpc"}, probe
            assert c[probe]["grpc"]["port"] == told, probe
        for probe in ("startupProbe", "readinessProbe"):
            assert c[probe]["grpc"]["service"] == HEALTH_SERVICE[service]


def test_gpu_overlay_asks_for_one_gpu_per_pod_and_cpu_for_none(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = overlay
    for service in SETTINGS:
        resources = container(objects, service)["resources"]
        gpus = {part: resources[part].get("nvidia.com/gpu") for part in ("requests", "limits")}
        if name == "gpu":
            assert gpus == {"requests": "1", "limits": "1"}, service
        else:
            assert gpus == {"requests": None, "limits": None}, service
    embedder, synthesizer = container(objects, "embedder"), container(objects, "synthesizer")
    if name == "gpu":
        assert env_value(embedder, "VOXCACHE_EMBEDDER_DEVICE") == "cuda:0"
        assert env_value(embedder, "VOXCACHE_EMBEDDER_MODEL_WORKERS") == "1"
        assert env_value(synthesizer, "VOXCACHE_SYNTHESIZER_BACKEND") == "indextts2"
        assert env_value(synthesizer, "VOXCACHE_SYNTHESIZER_SYNTHESIS_CONCURRENCY") == "1"
    else:
        assert env_value(embedder, "VOXCACHE_EMBEDDER_DEVICE") == "cpu"
        assert env_value(synthesizer, "VOXCACHE_SYNTHESIZER_BACKEND") == "kokoro"


def test_no_secret_is_written_in_the_manifests(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == []
    secrets = secret_env_names()
    assert "VOXCACHE_REDIS_PASSWORD" in secrets and "VOXCACHE_CACHE_HMAC_KEYS" in secrets
    for service in SETTINGS:
        for entry in container(objects, service)["env"]:
            if entry["name"] in secrets:
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], entry["name"]
    config = find(objects, "ConfigMap", "voxcache-config")["data"]
    assert not set(config) & secrets
    assert urlsplit(config["VOXCACHE_REDIS_URL"]).password is None


def test_tls_files_come_from_a_secret_volume(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    for service in SETTINGS:
        pod = find(objects, "Deployment", service)["spec"]["template"]["spec"]
        c = container(objects, service)
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounted: set[str] = set()
        for mount in c["volumeMounts"]:
            secret = volumes[mount["name"]].get("secret")
            if secret:
                assert mount["readOnly"] is True
                mounted |= {f"{mount['mountPath']}/{item['path']}" for item in secret["items"]}
        files = {e["value"] for e in c["env"] if re.search(r"_TLS_(CERT|KEY|CLIENT_CA|CA)$", e["name"])}
        assert files and files <= mounted, files - mounted


def test_network_policy_admits_only_the_synthesizer_and_named_clients_to_the_embedder(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    policy = find(objects, "NetworkPolicy", "embedder")["spec"]
    embedder_labels = find(objects, "Deployment", "embedder")["spec"]["template"]["metadata"]["labels"]
    synthesizer_labels = find(objects, "Deployment", "synthesizer")["spec"]["template"]["metadata"]["labels"]
    assert policy["policyTypes"] == ["Ingress"]
    assert policy["podSelector"]["matchLabels"].items() <= embedder_labels.items()
    grpc_rules = [r for r in policy["ingress"] if {"port": 50051, "protocol": "TCP"} in r["ports"]]
    assert len(grpc_rules) == 1
    peers = grpc_rules[0]["from"]
    for rule in policy["ingress"]:
        assert rule.get("from"), "an ingress rule without `from` admits every pod"
        for peer in rule["from"]:
            assert peer.get("podSelector", {}).get("matchLabels"), f"a peer selects every pod: {peer}"
    assert any(p["podSelector"]["matchLabels"].items() <= synthesizer_labels.items() for p in peers)
    assert {"voxcache.dev/embedder-client": "true"} in [p["podSelector"]["matchLabels"] for p in peers]


def test_every_voxcache_variable_is_one_the_service_reads(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    read = {
        service: {name for f in dataclasses.fields(cls) for name in env_names(cls, f.name)}
        for service, cls in SETTINGS.items()
    }
    for service in SETTINGS:
        for entry in container(objects, service)["env"]:
            if entry["name"].startswith("VOXCACHE_"):
                assert entry["name"] in read[service], f"{service} reads no {entry['name']}"
    for name in find(objects, "ConfigMap", "voxcache-config")["data"]:
        assert any(name in names for names in read.values()), f"no service reads {name}"


def test_memory_limits_sit_above_the_measured_rss(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """bench/results/rss.txt: each service's peak RSS (VmHWM) by scripts/measure_rss.sh."""
    _, objects = overlay
    measured = {}
    for line in (REPO / "bench" / "results" / "rss.txt").read_text().splitlines():
        found = re.match(r"(\w+)\s.*VmHWM:\s+(\d+) MiB", line)
        if found:
            measured[found[1]] = int(found[2])
    assert set(measured) == set(SETTINGS)
    for service, peak_mib in measured.items():
        resources = container(objects, service)["resources"]
        for part in ("requests", "limits"):
            assert set(resources[part]) >= {"cpu", "memory"}
        request, limit = (mebibytes(resources[part]["memory"]) for part in ("requests", "limits"))
        assert request >= peak_mib, f"{service}: request {request} MiB under the measured peak {peak_mib} MiB"
        assert limit >= 1.5 * peak_mib, f"{service}: limit {limit} MiB leaves under 50 % over {peak_mib} MiB"
    # The Embedder's in-process cache and write-back queue start empty and grow to their bounds.
    embedder = container(objects, "embedder")
    told = {e["name"]: e["value"] for e in embedder["env"] if "value" in e}
    bounds = sum(
        int(told.get(f"VOXCACHE_EMBEDDER_{field.upper()}", getattr(EmbedderSettings, field)))
        for field in ("local_cache_mb", "write_back_mb")
    )
    limit = mebibytes(embedder["resources"]["limits"]["memory"])
    assert limit >= measured["embedder"] + bounds, f"embedder: limit {limit} MiB < peak + caches"


def mebibytes(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


def test_pods_run_locked_down(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    for service in SETTINGS:
        pod = find(objects, "Deployment", service)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container(objects, service)["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
