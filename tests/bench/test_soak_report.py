"""The soak bench's arithmetic: RSS growth after warm-up, lost voices, errors and verdicts."""

import pytest

from bench.soak_report import (
    Outcome,
    errors_by_code,
    failures,
    latency_by_op,
    lost_voices,
    missed,
    rss_growth,
    targets,
    timeline,
)

MIB = 1024 * 1024


def test_rss_growth_compares_window_high_water_marks_after_the_warm_up() -> None:
    # A 0-20 s warm-up climbs from 100 MiB (ignored); then the allocator swings between 150 and
    # 200 MiB, with one 900 MiB spike; the run ends settled at 210 MiB.
    samples = [(float(t), (100 + 5 * t) * MIB) for t in range(20)]
    samples += [(float(t), (900 if t == 26 else 150 if t % 2 else 200) * MIB) for t in range(20, 100)]
    samples += [(float(t), 210 * MIB) for t in range(100, 140)]
    rss = rss_growth(samples, warmup_s=20, window_s=40)
    assert (rss["baseline_mib"], rss["end_mib"], rss["growth_pct"]) == (200.0, 210.0, 5.0)  # the swings' top
    assert rss["median_growth_pct"] == 20.0  # what medians would have called growth
    assert (rss["start_mib"], rss["max_mib"]) == (100.0, 900.0)


def test_rss_growth_refuses_a_run_too_short_for_its_windows() -> None:
    with pytest.raises(ValueError, match="too short"):
        rss_growth([(float(t), MIB) for t in range(20)], warmup_s=10, window_s=5)


def test_lost_voices_are_registered_minus_deleted_minus_resolvable() -> None:
    lost = lost_voices({"a", "b", "c", "d"}, {"d"}, {"a", "c", "d"})
    assert (lost["expected"], lost["resolvable"], lost["lost"], lost["lost_ids"]) == (3, 2, 1, ["b"])


def test_errors_are_counted_by_code_and_apart_during_outages() -> None:
    outcomes = [
        Outcome(1.0, "hit", "OK", 0.002),
        Outcome(2.0, "register", "UNAVAILABLE", 0.3, in_outage=True),
        Outcome(3.0, "miss", "DEADLINE_EXCEEDED", 5.0),
        Outcome(4.0, "miss", "OK", 0.1),
    ]
    errors = errors_by_code(outcomes)
    assert errors["all"] == {"DEADLINE_EXCEEDED": 1, "UNAVAILABLE": 1}
    assert errors["outside_outages"] == {"DEADLINE_EXCEEDED": 1} and errors["register"] == {"UNAVAILABLE": 1}
    by_op = latency_by_op(outcomes)
    assert (by_op["miss"]["sent"], by_op["miss"]["n"], by_op["miss"]["p50_ms"]) == (2, 1, 100.0)  # OK ones only
    assert by_op["delete"] == {"sent": 0, "n": 0}
    assert timeline(outcomes, bucket_s=2.0)["failed_per_s"] == [0.0, 1.0, 0.0]  # two failures in [2 s, 4 s)


def test_targets_fail_on_one_lost_voice_or_five_percent_growth() -> None:
    ok = {"targets": targets({"lost": 0}, {"growth_pct": 4.99})}
    assert missed(ok) == []
    bad = {"targets": targets({"lost": 1}, {"growth_pct": 5.0})}
    assert missed(bad) == ["lost_voices", "rss_growth_pct"]


def test_every_failure_is_listed_with_its_message_in_order() -> None:
    outcomes = [
        Outcome(3.0, "miss", "RESOURCE_EXHAUSTED", 0.001, message="queue ahead"),
        Outcome(1.0, "hit", "OK", 0.002),
        Outcome(2.0, "register", "UNAVAILABLE", 0.3, in_outage=True, message="redis down"),
    ]
    assert [(f["sent_s"], f["code"], f["message"]) for f in failures(outcomes)] == [
        (2.0, "UNAVAILABLE", "redis down"),
        (3.0, "RESOURCE_EXHAUSTED", "queue ahead"),
    ]
