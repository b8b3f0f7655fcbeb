"""The alert rules and the Grafana dashboard name only series a live Embedder really exports.

A renamed metric would leave an alert that never fires and a panel that stays empty, both
silently. This scrapes /metrics of a real Embedder (real ECAPA, real Redis) after traffic that
makes every family appear, and checks every `voxcache_*` name in deploy/prometheus/alerts.yml
(expressions and annotations) and in every query of deploy/grafana/voxcache.json against it.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.embedder.encoders.ecapa import EcapaEncoder
from services.embedder.settings import EmbedderSettings
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "voxcache.json"
NAME = re.compile(r"\bvoxcache_[a-z0-9_]+")


@pytest.fixture
async def exported(
    ecapa: EcapaEncoder, redis_server: LocalRedis, prefix: str, speech: dict[str, Any], other_speech: bytes
) -> AsyncIterator[set[str]]:
    """Every sample name of a scrape taken after a miss, a hit and a speaker score."""
    port = free_port()
    settings = replace(EmbedderSettings(), port=0, metrics_port=port, redis_url=redis_server.url, cache_prefix=prefix)
    running = await embedder_server.start(settings, encoders={"ecapa": ecapa})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = embedder_pb2_grpc.EmbedderStub(channel)
            await stub.Embed(pb.EmbedRequest(audio=speech["wav"]))
            await stub.Embed(pb.EmbedRequest(audio=speech["wav"]))
            await stub.ScoreSpeaker(pb.ScoreSpeakerRequest(audio=other_speech, reference_audio=speech["wav"]))
        url = f"http://127.0.0.1:{port}/metrics"
        body = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    finally:
        await running.stop()
    yield {sample.name for family in text_string_to_metric_families(body) for sample in family.samples}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_metric_in_the_alert_rules_and_the_dashboard_is_exported(exported: set[str]) -> None:
    alert_names = set(NAME.findall(ALERTS.read_text()))
    dashboard_names = {name for query in dashboard_queries() for name in NAME.findall(query)}
    # The guard guards something: both files name the families an operator needs.
    assert len(alert_names) >= 6 and len(dashboard_names) >= 12, (alert_names, dashboard_names)
    assert {"voxcache_shed_extractions_total", "voxcache_redis_available"} <= alert_names
    assert "voxcache_speaker_similarity_bucket" in dashboard_names
    missing = sorted((alert_names | dashboard_names) - exported)
    assert not missing, f"named in alerts.yml or voxcache.json but not exported by /metrics: {missing}"


def test_every_dashboard_panel_has_a_query_and_a_place() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "voxcache" and len(dashboard["panels"]) >= 8
    for panel in dashboard["panels"]:
        assert panel["targets"] and all(NAME.search(t["expr"]) for t in panel["targets"]), panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
