from pathlib import Path

import pytest

from services.common.config import redact_url
from services.embedder import settings


def test_flags_override_environment_which_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXCACHE_PORT", "6000")
    monkeypatch.setenv("VOXCACHE_REDIS_URL", "rediss://embedder@cache.internal:6380/2")
    monkeypatch.setenv("VOXCACHE_REDIS_PASSWORD", "s3cret")
    monkeypatch.setenv("VOXCACHE_MODEL_DIR", "/opt/models")
    parsed = settings.parse(["--port", "7000", "--redis-timeout-ms", "50"])
    assert parsed.port == 7000 and parsed.redis_timeout_ms == 50
    assert parsed.redis_url == "rediss://embedder@cache.internal:6380/2"
    assert parsed.redis_password == "s3cret" and parsed.model_dir == Path("/opt/models")
    assert parsed.metrics_port == settings.EmbedderSettings().metrics_port


def test_password_is_never_a_flag() -> None:
    with pytest.raises(SystemExit):
        settings.parse(["--redis-password", "oops"])


def test_redact_url() -> None:
    assert redact_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("rediss://:pw@host") == "rediss://:***@host"
    assert redact_url("redis://host:6379") == "redis://host:6379"


async def test_rediss_and_acl_urls_are_accepted() -> None:
    from services.embedder.cache.redis_store import RedisStore

    store = RedisStore("rediss://embedder:pw@cache.example:6380/1")
    kwargs = store._client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("embedder", "pw", 1)
    assert store._client.connection_pool.connection_class.__name__ == "SSLConnection"
    await store.close()
