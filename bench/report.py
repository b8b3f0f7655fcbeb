"""What a run leaves behind: targets with verdicts, machine facts, the table, the plot, the files.

Every figure a reader sees (the table, the plot, README quotes) is derived from the
results dict alone, so the JSON stays the single record of a run; the files are
written through a temporary name so a crashed run never leaves half a result.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from bench.harness import ratio

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
#: Each hit series, the floor it is compared with, the label of the pair, and the most its p50 may
#: be of the floor's (issue 11): L1 hits against a bare echo, a Redis hit against echo + one GET,
#: each floor at its hit's request and response sizes.
HIT_FLOORS = (
    ("hit_voice_id", "echo_voice_size", "voice_id L1 hit", 1.1),
    ("hit_upload", "echo_upload_size", "upload L1 hit", 1.2),
    ("redis_hit_upload", "echo_get_upload_size", "upload Redis hit", 1.2),
)
#: Load series: each floor next to the hits it is compared with.
LOAD_SERIES = tuple(name for hit, floor, _, _ in HIT_FLOORS for name in (floor, hit))
#: Sequential-latency series in the order the table and the plot show them.
LATENCY_SERIES = (*LOAD_SERIES, "miss_voice_id", "miss_upload")
#: Most Redis memory (MEMORY USAGE, key included) one ECAPA entry may take as shipped.
MEMORY_PER_ENTRY_BYTES = 700
#: Least cosine between the float16-rounded and the exact float32 vector of one clip.
FLOAT16_MIN_COSINE = 0.9999
SEED_MODES = ("with_cache", "without_cache")


# ---------------------------------------------------------------------------------------------
# Verdicts and machine facts
# ---------------------------------------------------------------------------------------------
def _target(value: float, op: str, limit: float, what: str) -> dict[str, Any]:
    ok = value <= limit if op == "<=" else value >= limit
    return {"value": value, "target": f"{op} {limit:g}", "pass": bool(ok), "what": what}


def hit_ratio(latency: dict[str, dict[str, Any]], hit: str, floor: str) -> float:
    """A hit's p50 over its floor's: the median of the rounds' ratios, each from one round's own
    samples. One round's ratio moves by several percent with what else the host runs at that
    moment, so a verdict from one round is a coin toss near the line; a run from before rounds
    (no `p50_ms_per_round`) gives the ratio of its p50s."""
    ratios = round_ratios(latency, hit, floor)
    return round(float(np.median(ratios)), 3) if ratios else ratio(latency[hit]["p50_ms"], latency[floor]["p50_ms"])


def round_ratios(latency: dict[str, dict[str, Any]], hit: str, floor: str) -> list[float]:
    """Each round's p50 of `hit` over its p50 of `floor`; empty for a run from before rounds."""
    rounds = zip(latency[hit].get("p50_ms_per_round", ()), latency[floor].get("p50_ms_per_round", ()), strict=True)
    return [ratio(h, f) for h, f in rounds]


def targets(latency: dict[str, dict[str, Any]], throughput: dict[str, Any], memory: dict[str, Any]) -> dict[str, Any]:
    """The README's targets, each with its value and pass/fail: what `--check` exits 1 on."""
    p50 = {name: s["p50_ms"] for name, s in latency.items()}
    rps = {name: r["rps"] for name, r in throughput.items()}
    out = {
        f"{hit}_vs_{floor}_p50": _target(
            hit_ratio(latency, hit, floor), "<=", limit, f"{label} p50 / {floor} p50, median round"
        )
        for hit, floor, label, limit in HIT_FLOORS
    }
    out |= {
        "upload_miss_over_hit_p50": _target(
            ratio(p50["miss_upload"], p50["hit_upload"]), ">=", 150, "upload miss p50 / L1 hit p50"
        ),
        "voice_miss_over_hit_p50": _target(
            ratio(p50["miss_voice_id"], p50["hit_voice_id"]), ">=", 150, "voice_id miss p50 / L1 hit p50"
        ),
    }
    out |= {
        f"{hit}_vs_{floor}_rps": _target(ratio(rps[hit], rps[floor]), ">=", 0.8, f"{label}s/s / {floor} req/s")
        for hit, floor, label, _ in HIT_FLOORS
    }
    out |= {
        "memory_per_ecapa_entry": _target(
            memory["memory_usage_max_bytes"], "<=", MEMORY_PER_ENTRY_BYTES, "MEMORY USAGE per ECAPA entry, B"
        ),
        "float16_vs_float32_cosine": _target(
            memory["float16_vs_float32_cosine_min"], ">=", FLOAT16_MIN_COSINE, "float16-rounded vs float32 cosine"
        ),
    }
    return out


def missed_targets(results: dict[str, Any]) -> list[str]:
    """Names of the targets that failed, informational ones excepted: what `--check` exits 1 on."""
    return [name for name, t in results["targets"].items() if not t["pass"] and not t.get("informational")]


def machine(embedder_info: dict[str, Any], redis_version: str, load_before: Sequence[float]) -> dict[str, Any]:
    """What the numbers depend on, so results are only compared across like machines and versions.

    `load_before` is `os.getloadavg()` from the start of the run.
    """
    import redis as redis_py

    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "redis_py": redis_py.__version__,
        "redis_server": redis_version,
        "numpy": np.__version__,
        "torch": embedder_info.get("torch_version"),
        "torch_threads": embedder_info.get("torch_threads"),
        "torch_interop_threads": embedder_info.get("torch_interop_threads"),
        "embedder_argv": embedder_info.get("argv"),
        "embedder_settings": embedder_info.get("settings"),
        # Other work on the machine skews everything. The bench alone drives the 1-min
        # load average to ~2 on 2 cores; a "before" well above 0 means something else ran.
        "loadavg_1m_before": round(load_before[0], 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def write_json(path: Path, results: dict[str, Any]) -> Path:
    """Write through a temporary file and rename, so a reader never sees half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path


def write_results(out_dir: Path, results: dict[str, Any], series: dict[str, list[float]]) -> tuple[Path, Path]:
    """embedder.json and embedder.png in `out_dir`; the plot needs the raw series the JSON only summarises."""
    json_path, png_path = write_json(out_dir / "embedder.json", results), out_dir / "embedder.png"
    plot(results, series, png_path)
    return json_path, png_path


def shown(path: Path) -> Path:
    """`path` relative to the repository when it lies inside it, as the README quotes it."""
    return path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path


# ---------------------------------------------------------------------------------------------
# Plot
# ---------------------------------------------------------------------------------------------
def plot(results: dict[str, Any], series: dict[str, list[float]], path: Path) -> None:
    """Four panels: latency percentiles, hit-vs-floor CDF, throughput, seed workload."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(
        f"voxcache Embedder — {results['machine']['cpu_count']} CPUs, "
        f"torch threads {results['machine']['torch_threads']}, python {results['machine']['python']}"
    )
    _latency_panel(axes[0][0], results["latency_ms"])
    _cdf_panel(axes[0][1], results["latency_ms"], series)
    _throughput_panel(axes[1][0], results["throughput"], results["config"]["concurrency"])
    _seed_panel(axes[1][1], results["seed_workload"])
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)


def _latency_panel(ax: Any, latency: dict[str, Any]) -> None:
    x = np.arange(len(LATENCY_SERIES))
    for i, q in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        ax.bar(x + (i - 1) * 0.27, [latency[n][q] for n in LATENCY_SERIES], 0.27, label=q.split("_")[0])
    ax.set_yscale("log")
    ax.set_xticks(x, [n.replace("_", "\n", 1) for n in LATENCY_SERIES], fontsize=8)
    ax.set_ylabel("ms (log)")
    ax.set_title("Sequential latency over gRPC")
    ax.legend()


def _cdf_panel(ax: Any, latency: dict[str, Any], series: dict[str, list[float]]) -> None:
    for name in LOAD_SERIES:
        data = np.sort(np.asarray(series.get(name, []))) * 1000
        if data.size:
            ax.plot(data, np.arange(1, data.size + 1) / data.size, label=name)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of requests")
    ax.set_title("Hit vs floor latency CDF")
    ax.set_xlim(left=0, right=max(latency[n]["p99_ms"] for n in LOAD_SERIES) * 1.2)
    ax.legend(fontsize=8)


def _throughput_panel(ax: Any, throughput: dict[str, Any], concurrency: int) -> None:
    pairs = [(label, floor, hit) for hit, floor, label, _ in HIT_FLOORS]
    x = np.arange(len(pairs))
    floor_rps = [throughput[f]["rps"] for _, f, _ in pairs]
    hit_rps = [throughput[h]["rps"] for _, _, h in pairs]
    ax.bar(x - 0.2, floor_rps, 0.4, label="floor req/s")
    ax.bar(x + 0.2, hit_rps, 0.4, label="Embedder hits/s")
    for xi, f in zip(x, floor_rps, strict=True):
        ax.hlines(0.8 * f, xi - 0.4, xi + 0.4, colors="red", linestyles="dashed")
    ax.set_xticks(x, [p[0] for p in pairs])
    ax.set_title(f"Throughput at {concurrency} concurrent clients (dashed: 0.8x floor; dots: rounds)")
    positions = [xi + offset for xi in x for offset in (-0.2, 0.2)]
    for xi, name in zip(positions, LOAD_SERIES, strict=True):
        per_round = throughput[name]["rps_per_round"]
        ax.plot([xi] * len(per_round), per_round, "k.", markersize=4)
    ax.legend()


def _seed_panel(ax: Any, seed: dict[str, Any]) -> None:
    x = np.arange(2)
    for offset, q in ((-0.2, "p50_ms"), (0.2, "p95_ms")):
        bars = ax.bar(x + offset, [seed[m][q] for m in SEED_MODES], 0.4, label=q.split("_")[0])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(x, [m.replace("_", " ") for m in SEED_MODES])
    ax.set_yscale("log")
    ax.set_ylabel("ms (log)")
    ax.set_title(
        f"Seed workload: {seed['reuse_fraction']:.0%} reuse, {seed['requests']} requests, "
        f"concurrency {seed['concurrency']}"
    )
    ax.legend()


# ---------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    """A compact, human-readable summary of everything in the JSON that matters."""
    m, s = results["machine"], results["sizes"]
    lines = [
        f"voxcache Embedder benchmark - {m['cpu_count']} CPUs ({m['cpu_model']}), python {m['python']}, "
        f"torch {m['torch']} threads {m['torch_threads']}, grpcio {m['grpcio']}, redis {m['redis_server']}",
        f"payloads: upload request {s['upload_request_bytes']:,} B, voice_id request {s['voice_request_bytes']} B, "
        f"hit response {s['upload_hit_response_bytes']} B (Redis hit {s['redis_hit_response_bytes']} B), "
        f"floor's Redis value {s['floor_redis_value_bytes']} B (a copy of the real record)",
        *_latency_lines(results["latency_ms"]),
        *_throughput_lines(results["throughput"], results["config"]),
        *_seed_lines(results["seed_workload"]),
        *_memory_lines(results["redis_memory"]),
        *miss_lines(results["miss"]),
        *_target_lines(results["targets"]),
    ]
    lines.append(f"\ntotal {results['phase_seconds']['total']:.0f}s  phases: {results['phase_seconds']}")
    return "\n".join(lines)


def _latency_lines(latency: dict[str, Any]) -> list[str]:
    floors = {hit: floor for hit, floor, _, _ in HIT_FLOORS}
    head = f"{'sequential latency (ms)':<32}{'n':>6}{'p50':>10}{'p95':>10}{'p99':>10}{'p50/floor':>11}  per round"
    lines = ["", head]
    for name in LATENCY_SERIES:
        r = latency[name]
        vs = ""
        if name in floors:
            each = ", ".join(f"{x:.3f}" for x in round_ratios(latency, name, floors[name]))
            vs = f"{hit_ratio(latency, name, floors[name]):>11.3f}  {each}"
        lines.append(f"  {name:<30}{r['n']:>6}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['p99_ms']:>10.3f}{vs}")
    lines.append("  (p50/floor: the median of the rounds' ratios; p50, p95, p99: all rounds' samples)")
    return lines


def _throughput_lines(throughput: dict[str, Any], cfg: dict[str, Any]) -> list[str]:
    heading = f"throughput ({cfg['concurrency']} clients, {cfg['load_rounds']}x{cfg['load_duration_s']:g}s)"
    lines = ["", f"{heading:<32}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv us/req':>12}{'cli us/req':>12}"]
    for name in LOAD_SERIES:
        r = throughput[name]
        lines.append(
            f"  {name:<30}{r['rps']:>9.0f}{r['latency'].get('p50_ms', 0):>9.2f}{r['latency'].get('p99_ms', 0):>9.2f}"
            f"{r['server_cpu_us_per_request']:>12.0f}{r['client_cpu_us_per_request']:>12.0f}"
        )
    return lines


def _seed_lines(seed: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"seed workload ({seed['reuse_fraction']:.0%} one voice, {seed['requests']} requests, "
        f"concurrency {seed['concurrency']})",
        f"  {'':<16}{'p50 ms':>10}{'p95 ms':>10}{'wall s':>9}{'hit ratio':>11}",
    ]
    for mode in SEED_MODES:
        r = seed[mode]
        lines.append(f"  {mode:<16}{r['p50_ms']:>10.2f}{r['p95_ms']:>10.2f}{r['wall_s']:>9.2f}{r['hit_ratio']:>11.2f}")
        if mode == "with_cache":
            for kind, part in r["by_outcome"].items():
                if part.get("n"):
                    lines.append(f"    {kind:<14}{part['p50_ms']:>10.2f}{part['p95_ms']:>10.2f}   (n={part['n']})")
    lines.append(f"  speed-up with the cache: p50 {seed['p50_speedup']:.1f}x, p95 {seed['p95_speedup']:.1f}x")
    return lines


def _memory_lines(mem: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"redis memory per ECAPA entry ({mem['entries']} entries each; key {mem['key_chars']} chars, "
        f"e.g. {mem['example_key']})",
    ]
    for label, m in (("float16-rounded (default)", mem), ("float32 (--ecapa-float16 false)", mem["float32"])):
        lines += [
            f"  {label}: value {m['value_bytes']} B, MEMORY USAGE {m['memory_usage_mean_bytes']:.0f} B "
            f"(max {m['memory_usage_max_bytes']}), used_memory delta/N {m['used_memory_delta_per_entry_bytes']:.0f} B"
            f" = objects {m['dataset_delta_per_entry_bytes']:.0f} + hash tables "
            f"{m['hashtables_delta_per_entry_bytes']:.0f} (client buffers {m['client_buffers_delta_bytes']:,} B "
            "in total)",
        ]
    lines += [
        f"  cosine float16-rounded vs float32, same clips: min {mem['float16_vs_float32_cosine_min']:.7f}, "
        f"mean {mem['float16_vs_float32_cosine_mean']:.7f}",
        f"  (a registered voice also keeps its reference audio: {mem['registered_voice_audio_key_bytes']} B)",
    ]
    return lines


def miss_lines(miss: dict[str, Any]) -> list[str]:
    """The table's section for bench/miss_bench.py's results: runtimes, then batching."""
    out = [
        "",
        f"ECAPA runtimes on {miss['device']} ({miss['clip_s']:g} s clip, features + forward pass; "
        f"auto chose {miss['choice']['runtime']})",
        f"  {'runtime':<18}{'median ms':>11}{'p90 ms':>9}{'cosine':>11}{'warm-up ms':>12}{'ms/clip in a batch':>20}",
    ]
    for name, r in miss["runtimes"].items():
        warm = miss["choice"]["warmup_ms"].get(name)
        out.append(
            f"  {name:<18}{r['median_ms']:>11.1f}{r['p90_ms']:>9.1f}{r['cosine_to_torch']:>11.7f}"
            f"{warm if warm is not None else float('nan'):>12.1f}"
            f"{r['batch_ms_per_clip']:>12.1f} (of {r['batch_clips']})"
        )
    out.append(f"  {'in flight':<18}{'unbatched/s':>12}{'batched/s':>11}{'ratio':>8}{'mean batch':>12}")
    for level, r in miss["batching"].items():
        out.append(
            f"  {level:<18}{r['unbatched_per_s']:>12.2f}{r['batched_per_s']:>11.2f}{r['speedup']:>8.2f}"
            f"{r['mean_batch']:>12.2f}"
        )
    out.append(f"  batched vs unbatched vectors: min cosine {miss['batched_min_cosine']:.7f}")
    return out


def _target_lines(tg: dict[str, Any]) -> list[str]:
    lines = ["", "targets"]
    for t in tg.values():
        verdict = "info" if t.get("informational") else ("PASS" if t["pass"] else "FAIL")
        lines.append(f"  {t['what']:<64}{t['value']:>10.6g}  {t['target']:<8}  {verdict}")
    return lines
