"""The Grafana dashboard drawn from a real run: the README's picture of deploy/grafana/voxcache.json.

One command (`.venv/bin/python -m bench.dashboard_run`): a private redis-server, a real Embedder
(ECAPA, --max-pending 2, /metrics on loopback) and Synthesizer (Kokoro, --score-sample-rate 2),
and Debian's Prometheus 2.42 scraping the Embedder every second with deploy/prometheus/alerts.yml
loaded. A scripted workload walks through the states the dashboard and the alerts are for:

1. warm-up: two callers ask for 16 distinct clips at random (misses, then hits);
2. Redis stopped: the Embedder fails open (errors, write-back queue, new clips still served);
3. Redis back: the queue is written back, hits return;
4. a burst of 12 new clips at once with a 1.5 s deadline: the admission queue sheds.

Kokoro speaks a short sentence every few seconds throughout, half of them scored. Then every
panel's own PromQL is asked of Prometheus over the run (`$__rate_interval` = 15s) and drawn in the
dashboard's layout: deploy/grafana/voxcache.png. Phase times, the alerts Prometheus evaluated
and the final GetStats go to bench/results/dashboard_run.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.clips import distinct_clips, synthesize
from bench.report import RESULTS_DIR, write_json
from services.common.paths import REPO_ROOT
from services.common.redis_server import LocalRedis, free_port
from services.embedder import server as embedder_server
from services.embedder.settings import EmbedderSettings
from services.synthesizer import server as synthesizer_server
from services.synthesizer.settings import SynthesizerSettings
from voxcache import AsyncEmbedderClient, AsyncSynthesizerClient, VoxcacheError

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "voxcache.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
PICTURE = REPO_ROOT / "deploy" / "grafana" / "voxcache.png"
REFERENCE = REPO_ROOT / "samples" / "reference_en.wav"
RATE_INTERVAL = "15s"


class Prometheus:
    """Debian's prometheus binary on loopback, scraping one target every second, alert rules loaded."""

    def __init__(self, target: str, workdir: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus not found: apt-get install prometheus (group `alerts` of the apt lock)")
        self.port = free_port()
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{ALERTS}']\n"
            f"scrape_configs: [{{job_name: voxcache-embedder, static_configs: [{{targets: ['{target}']}}]}}]\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = json.loads(answer.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus: {body}")
        return body["data"]

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2)
                return
            time.sleep(0.5)
        raise TimeoutError("prometheus did not become ready")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


async def workload(embedder_address: str, synth_address: str, redis: LocalRedis, workdir: Path) -> dict[str, float]:
    """Run the four phases; returns when each began (unix seconds)."""
    base = synthesize("Every worker shares what it learns about a voice, once.", 3.0, workdir)
    warm, outage, burst = distinct_clips(base, 40)[:16], distinct_clips(base, 40)[16:28], distinct_clips(base, 40)[28:]
    phases: dict[str, float] = {}
    stop = asyncio.Event()
    rng = random.Random(7)

    async def caller(client: AsyncEmbedderClient, pool: list[bytes]) -> None:
        while not stop.is_set():
            with contextlib.suppress(VoxcacheError):
                await client.embed(rng.choice(pool))
            await asyncio.sleep(0.05)

    async def speaker(client: AsyncSynthesizerClient) -> None:
        reference = REFERENCE.read_bytes()
        texts = ("The cache remembers every voice.", "Each worker shares what it learned.")
        i = 0
        while not stop.is_set():
            with contextlib.suppress(VoxcacheError):
                await client.say(texts[i % 2], voice=reference)
            i += 1
            await asyncio.sleep(3)

    async with (
        AsyncEmbedderClient(embedder_address, timeout=30) as client,
        AsyncSynthesizerClient(synth_address, timeout=120) as synth,
    ):
        pool = list(warm)
        phases["warm-up"] = time.time()
        tasks = [asyncio.create_task(caller(client, pool)) for _ in range(2)]
        tasks.append(asyncio.create_task(speaker(synth)))
        await asyncio.sleep(45)
        phases["redis stopped"] = time.time()
        await asyncio.to_thread(redis.stop)
        pool.extend(outage)  # new clips while Redis is down: computed, queued for write-back
        await asyncio.sleep(35)
        phases["redis back"] = time.time()
        await asyncio.to_thread(redis.start)
        await asyncio.sleep(30)
        phases["burst"] = time.time()

        async def one(clip: bytes) -> None:
            with contextlib.suppress(VoxcacheError):
                await client.embed(clip, timeout=1.5)

        for _ in range(3):
            await asyncio.gather(*(one(clip) for clip in burst))
            await asyncio.sleep(4)
        await asyncio.sleep(10)
        phases["end"] = time.time()
        stop.set()
        await asyncio.gather(*tasks)
    return phases


def draw(prom: Prometheus, phases: dict[str, float], path: Path) -> dict[str, Any]:
    """Every panel of the dashboard, in its grid position, from its own queries over the run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = json.loads(DASHBOARD.read_text())
    start, end = phases["warm-up"], phases["end"]
    fig = plt.figure(figsize=(16, 12))
    grid = fig.add_gridspec(24, 24, hspace=12, wspace=3)
    drawn = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        ax = fig.add_subplot(grid[pos["y"] : pos["y"] + pos["h"], pos["x"] : pos["x"] + pos["w"]])
        ax.set_title(panel["title"], fontsize=10, loc="left")
        series_count = 0
        for target in panel["targets"]:
            query = target["expr"].replace("$__rate_interval", RATE_INTERVAL).replace("$instance", ".*")
            result = prom.api("query_range", query=query, start=str(start), end=str(end), step="2")
            for series in result["result"]:
                label = target["legendFormat"]
                for key, value in series["metric"].items():
                    label = label.replace("{{" + key + "}}", value)
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                ax.plot(xs, ys, linewidth=1.6, label=label)
                series_count += 1
        for name, at in phases.items():
            if name != "end":
                ax.axvline(at - start, color="0.6", linewidth=0.8, linestyle=":")
        defaults = panel["fieldConfig"]["defaults"]
        if "min" in defaults or "max" in defaults:
            ax.set_ylim(defaults.get("min"), defaults.get("max"))
        for step in defaults.get("thresholds", {}).get("steps", []):
            if step.get("value") is not None:
                ax.axhline(step["value"], color="tab:red", linewidth=0.8, linestyle="--")
        ax.set_xlim(0, end - start)
        ax.tick_params(labelsize=8)
        ax.set_xlabel(f"s into the run; unit: {defaults.get('unit', '')}", fontsize=7, labelpad=1)
        if series_count:
            ax.legend(fontsize=7, loc="upper left")
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.5")
        drawn[panel["title"]] = series_count
    marks = ", ".join(f"{name} at {at - start:.0f} s" for name, at in phases.items() if name != "end")
    fig.suptitle(
        "deploy/grafana/voxcache.json, every panel's own PromQL drawn from a real run of bench/dashboard_run.py "
        f"({end - start:.0f} s; Prometheus 2.42 scraping every 1 s)\nphases (dotted): {marks}",
        fontsize=11,
    )
    fig.savefig(path, dpi=90, bbox_inches="tight")
    return drawn


async def run(workdir: Path) -> dict[str, Any]:
    metrics_port = free_port()
    with LocalRedis() as redis:
        embedder = await embedder_server.start(
            replace(
                EmbedderSettings(),
                port=0,
                metrics_port=metrics_port,
                redis_url=redis.url,
                cache_prefix="dashrun",
                max_pending=2,
            )
        )
        synth = await synthesizer_server.start(
            replace(SynthesizerSettings(), port=0, embedder_address=f"127.0.0.1:{embedder.port}", score_sample_rate=2)
        )
        prom = Prometheus(f"127.0.0.1:{metrics_port}", workdir)
        try:
            await synth.warm_up
            await asyncio.to_thread(prom.wait_ready)
            phases = await workload(f"127.0.0.1:{embedder.port}", f"127.0.0.1:{synth.port}", redis, workdir)
            await asyncio.sleep(3)  # the last scrapes
            drawn = await asyncio.to_thread(draw, prom, phases, PICTURE)
            fired = await asyncio.to_thread(
                prom.api,
                "query_range",
                query='ALERTS{alertstate=~"pending|firing"}',
                start=str(phases["warm-up"]),
                end=str(phases["end"]),
                step="2",
            )
            snapshot = await embedder.core.full_snapshot()
        finally:
            await asyncio.to_thread(prom.close)
            await synth.stop()
            await embedder.stop()
    start = phases["warm-up"]
    return {
        "phases_s": {name: round(at - start, 1) for name, at in phases.items()},
        "panels_drawn": drawn,
        # Alerts with a `for:` of 2-10 min only reach pending in a 2-minute run; those without one fire.
        "alerts_seen": sorted({(s["metric"]["alertname"], s["metric"]["alertstate"]) for s in fired["result"]}),
        "final_stats": {
            "requests": snapshot.requests,
            "hit_ratio": round(snapshot.hit_ratio, 3),
            "extractions": snapshot.extractions,
            "redis_errors": snapshot.redis_errors,
            "write_back_written": snapshot.write_back_written,
            "shed_extractions": snapshot.shed,
            "speaker_similarity_p50": {k: round(v.p50, 3) for k, v in snapshot.speaker_similarity.items()},
        },
        "picture": str(PICTURE.relative_to(REPO_ROOT)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "dashboard_run.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(run(Path(tmp)))
    write_json(args.out, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
