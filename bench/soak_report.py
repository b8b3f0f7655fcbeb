"""The soak bench's arithmetic, verdicts, summary and plot: pure functions of what a run recorded.

Kept apart from the runner (bench/soak.py) so the figures a reader sees (RSS growth, lost
voices, errors by code, per-operation percentiles) are computed by small functions with
their own tests (tests/bench/test_soak_report.py), not inside a ten-minute run.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.harness import summarize

#: The issue's targets: no registered voice lost, and the Embedder's RSS grows less than this.
MAX_LOST_VOICES = 0
MAX_RSS_GROWTH_PCT = 5.0
OPS = ("hit", "miss", "register", "delete")


@dataclass(frozen=True)
class Outcome:
    """One request of the open-loop schedule: when it was sent (s since start), what, how it ended."""

    sent_s: float
    op: str
    code: str  # a grpc.StatusCode name; "OK" for success
    latency_s: float
    #: In flight while Redis was down or just back (errors then are expected, and counted apart).
    in_outage: bool = False
    #: The server's message, for failures (the JSON lists every failure with it).
    message: str = ""


def rss_growth(samples: Sequence[tuple[float, int]], warmup_s: float, window_s: float) -> dict[str, float]:
    """RSS growth in percent from just after warm-up to the end of the run.

    `samples` are (seconds since start, RSS bytes). Baseline and end are each window's
    high-water mark, its 95th percentile: [warmup_s, warmup_s + window_s) against the last
    `window_s`. Not the median: for minutes the Embedder's RSS swings by ~40 MiB between
    forward passes (glibc hands big freed blocks back to the OS until its mmap threshold
    has adapted), then settles at the top of that swing; a median taken inside the swings
    reads that settling as growth (one 10-minute run: +5.7 % by medians, no rise of the
    peak). A leak raises the high-water mark; one sample's spike in a window does not.
    `median_growth_pct` is kept beside it for comparison.
    """
    if not samples:
        raise ValueError("no RSS samples")
    last = samples[-1][0]
    baseline = [rss for t, rss in samples if warmup_s <= t < warmup_s + window_s]
    end = [rss for t, rss in samples if t >= last - window_s]
    if not baseline or warmup_s + window_s > last - window_s:
        raise ValueError(f"a run of {last:.0f} s is too short for a {warmup_s:g} s warm-up and {window_s:g} s windows")
    base, final = _high_water(baseline), _high_water(end)
    mib = 1024 * 1024
    return {
        "start_mib": round(samples[0][1] / mib, 1),
        "baseline_mib": round(base / mib, 1),
        "end_mib": round(final / mib, 1),
        "max_mib": round(max(rss for _, rss in samples) / mib, 1),
        "growth_pct": round((final - base) / base * 100, 2),
        "median_growth_pct": round((statistics.median(end) / statistics.median(baseline) - 1) * 100, 2),
        "warmup_s": warmup_s,
        "window_s": window_s,
    }


def _high_water(values: Sequence[int]) -> float:
    """The 95th percentile (linear interpolation): the top of the swings, not one spike."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), 95))


def lost_voices(registered: Iterable[str], deleted: Iterable[str], resolvable: Iterable[str]) -> dict[str, Any]:
    """Voices registered and not deleted that no longer resolve: registered - deleted - resolvable."""
    expected = set(registered) - set(deleted)
    lost = sorted(expected - set(resolvable))
    return {
        "registered": len(set(registered)),
        "deleted": len(set(deleted)),
        "expected": len(expected),
        "resolvable": len(expected) - len(lost),
        "lost": len(lost),
        "lost_ids": lost[:20],
    }


def errors_by_code(outcomes: Iterable[Outcome]) -> dict[str, dict[str, int]]:
    """Non-OK outcomes: {"all": {code: n}, "outside_outages": {...}, "<op>": {...}}."""
    table: dict[str, Counter[str]] = {"all": Counter(), "outside_outages": Counter()}
    for o in outcomes:
        if o.code == "OK":
            continue
        table["all"][o.code] += 1
        table.setdefault(o.op, Counter())[o.code] += 1
        if not o.in_outage:
            table["outside_outages"][o.code] += 1
    return {name: dict(sorted(counts.items())) for name, counts in table.items()}


def failures(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """Every failed request, in the order sent, so a surprising code can be traced to its moment and cause."""
    return [
        {
            "sent_s": round(o.sent_s, 2),
            "op": o.op,
            "code": o.code,
            "latency_ms": round(o.latency_s * 1000, 1),
            "in_outage": o.in_outage,
            "message": o.message,
        }
        for o in sorted(outcomes, key=lambda o: o.sent_s)
        if o.code != "OK"
    ]


def latency_by_op(outcomes: Iterable[Outcome]) -> dict[str, dict[str, float]]:
    """Per operation: percentiles of the successful requests, plus how many were sent."""
    ok: dict[str, list[float]] = {op: [] for op in OPS}
    sent: Counter[str] = Counter()
    for o in outcomes:
        sent[o.op] += 1
        if o.code == "OK":
            ok.setdefault(o.op, []).append(o.latency_s)
    return {op: {"sent": sent[op], **summarize(samples)} for op, samples in ok.items()}


def timeline(outcomes: Iterable[Outcome], bucket_s: float) -> dict[str, list[float]]:
    """Requests per second that succeeded and that failed, per `bucket_s` slice of the run (for the plot)."""
    ok: Counter[int] = Counter()
    failed: Counter[int] = Counter()
    for o in outcomes:
        (ok if o.code == "OK" else failed)[int(o.sent_s // bucket_s)] += 1
    n = max([*ok, *failed], default=-1) + 1
    return {
        "t_s": [i * bucket_s for i in range(n)],
        "ok_per_s": [ok[i] / bucket_s for i in range(n)],
        "failed_per_s": [failed[i] / bucket_s for i in range(n)],
    }


def targets(lost: dict[str, Any], rss: dict[str, float]) -> dict[str, dict[str, Any]]:
    return {
        "lost_voices": {
            "value": lost["lost"],
            "target": f"<= {MAX_LOST_VOICES}",
            "pass": lost["lost"] <= MAX_LOST_VOICES,
        },
        "rss_growth_pct": {
            "value": rss["growth_pct"],
            "target": f"< {MAX_RSS_GROWTH_PCT:g}",
            "pass": rss["growth_pct"] < MAX_RSS_GROWTH_PCT,
        },
    }


def missed(results: dict[str, Any]) -> list[str]:
    """The targets a run missed: what `--check` exits non-zero on."""
    return [name for name, t in results["targets"].items() if not t["pass"]]


def summary(results: dict[str, Any]) -> str:
    """What a person reads at the end of a run; every figure is in the JSON too."""
    c, rss, lost = results["config"], results["rss"], results["voices"]
    mix = ", ".join(f"{op} {share:.0%}" for op, share in c["mix"].items())
    restarts = ", ".join(f"{r['at_s']:.0f} s ({r['how']})" for r in results["restarts"])
    lines = [
        f"voxcache soak: {c['duration_s']:.0f} s at {c['rate']:g} req/s open loop ({mix}), "
        f"Redis restarted at {restarts}",
        "",
        f"{'operation':<12}{'sent':>7}{'ok':>7}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    for op, s in results["latency_ms"].items():
        p50, p99 = (f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}") if s["n"] else ("-", "-")
        lines.append(f"  {op:<10}{s['sent']:>7}{s['n']:>7}{p50:>10}{p99:>10}")
    errors = results["errors"]
    lines += [
        "",
        f"errors by code: {_codes(errors['all'])}",
        f"  outside the Redis outages: {_codes(errors['outside_outages'])}",
        *(f"  {op}: {_codes(errors[op])}" for op in OPS if op in errors),
        "",
        f"Embedder RSS: start {rss['start_mib']} MiB, after {rss['warmup_s']:g} s warm-up {rss['baseline_mib']} MiB, "
        f"end {rss['end_mib']} MiB, max {rss['max_mib']} MiB: growth {rss['growth_pct']:+.2f} % "
        f"(95th percentiles of {rss['window_s']:g} s windows; by medians {rss['median_growth_pct']:+.2f} %)",
        f"voices: {lost['registered']} registered, {lost['deleted']} deleted, {lost['resolvable']} of "
        f"{lost['expected']} expected resolve after the run: {lost['lost']} lost"
        + (f" ({', '.join(lost['lost_ids'])})" if lost["lost"] else ""),
        f"  uncertain (the call timed out, so its effect is unknown; not counted): {results['uncertain_voices']}",
        "",
        "targets",
    ]
    for name, t in results["targets"].items():
        lines.append(f"  {name:<16}{t['value']:>8}  {t['target']:<6}  {'PASS' if t['pass'] else 'FAIL'}")
    return "\n".join(lines)


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in counts.items()) or "none"


def plot(results: dict[str, Any], path: Path) -> None:
    """Two panels sharing time: the Embedder's RSS, and requests per second OK vs failed; restarts marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, height_ratios=(3, 2))
    t = [s[0] for s in results["rss_samples"]]
    top.plot(t, [s[1] / 1024 / 1024 for s in results["rss_samples"]], lw=1, label="Embedder RSS")
    rss = results["rss"]
    top.axvspan(0, rss["warmup_s"], color="0.9", label="warm-up (not in the growth figure)")
    top.axhline(rss["baseline_mib"], color="green", ls=":", label=f"baseline {rss['baseline_mib']} MiB")
    top.axhline(rss["end_mib"], color="purple", ls=":", label=f"end {rss['end_mib']} MiB ({rss['growth_pct']:+.2f} %)")
    top.set_ylabel("MiB")
    top.set_title(
        f"voxcache soak: {results['config']['rate']:g} req/s for {results['config']['duration_s']:.0f} s, "
        f"{results['voices']['lost']} voices lost"
    )
    line = results["timeline"]
    bottom.plot(line["t_s"], line["ok_per_s"], label="ok/s")
    bottom.plot(line["t_s"], line["failed_per_s"], color="red", label="failed/s")
    bottom.set_xlabel("seconds since start")
    bottom.set_ylabel("requests/s")
    for ax in (top, bottom):
        for r in results["restarts"]:
            ax.axvspan(r["at_s"], r["back_s"], color="orange", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    bottom.text(0.01, 0.9, "orange: Redis down (kill -9, then SIGTERM)", transform=bottom.transAxes, fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".png.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    tmp.replace(path)
