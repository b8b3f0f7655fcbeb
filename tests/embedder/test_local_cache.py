import numpy as np

from services.embedder.cache.local import LocalCache
from services.embedder.conditioning import Conditioning


def entry(key: str, floats: int) -> Conditioning:
    return Conditioning("ecapa", "d", key, {"speaker": np.zeros(floats, np.float32)})


def test_bounded_in_bytes_least_recently_used_goes_first() -> None:
    cache = LocalCache(capacity_bytes=3 * 768)
    for key in "abc":
        cache.put(entry(key, 192))
    assert cache.get("a") is not None  # a is now most recent
    cache.put(entry("d", 192))
    assert cache.get("b") is None
    assert {k for k in "acd" if cache.get(k)} == set("acd")
    assert cache.nbytes == 3 * 768 and len(cache) == 3


def test_large_entry_evicts_several_and_oversized_is_not_cached() -> None:
    cache = LocalCache(capacity_bytes=1000)
    cache.put(entry("a", 100))
    cache.put(entry("b", 100))
    cache.put(entry("big", 200))  # 800 bytes: both small ones must go
    assert cache.get("a") is None and cache.get("b") is None and cache.get("big") is not None
    cache.put(entry("huge", 1000))
    assert cache.get("huge") is None and cache.nbytes == 800


def test_replacing_a_key_does_not_double_count() -> None:
    cache = LocalCache(capacity_bytes=10_000)
    cache.put(entry("a", 100))
    cache.put(entry("a", 100))
    assert cache.nbytes == 400 and len(cache) == 1
