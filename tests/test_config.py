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
    cluster = "redis+cluster://embedder:pw@10.0.0.1:7000,10.0.0.2:7001"
    assert redact_url(cluster) == "redis+cluster://embedder:***@10.0.0.1:7000,10.0.0.2:7001"


async def test_rediss_and_acl_urls_are_accepted() -> None:
    from services.embedder.cache.redis_store import RedisStore

    store = RedisStore("rediss://embedder:pw@cache.example:6380/1")
    kwargs = store._client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("embedder", "pw", 1)
    assert store._client.connection_pool.connection_class.__name__ == "SSLConnection"
    await store.close()


async def test_cluster_urls_give_a_cluster_client_with_every_seed_tls_and_acl() -> None:
    from redis.asyncio import RedisCluster

    from services.embedder.cache.redis_store import RedisStore

    store = RedisStore("rediss+cluster://embedder:pw@cache-a.example:7000,cache-b.example:7001")
    client = store._client
    assert isinstance(client, RedisCluster)
    assert (client.connection_kwargs["username"], client.connection_kwargs["password"]) == ("embedder", "pw")
    assert client.connection_kwargs["connection_class"].__name__ == "SSLConnection"
    seeds = {(node.host, int(node.port)) for node in client.startup_nodes}
    assert seeds == {("cache-a.example", 7000), ("cache-b.example", 7001)}
    await store.close()


def test_every_setting_has_help_and_the_help_shows_env_names_and_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import dataclasses

    from services.synthesizer import settings as synth_settings

    for cls in (settings.EmbedderSettings, synth_settings.SynthesizerSettings):
        for field in dataclasses.fields(cls):
            assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"
    with pytest.raises(SystemExit):
        settings.parse(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "VOXCACHE_EMBEDDER_MAX_PENDING or VOXCACHE_MAX_PENDING, default: 64" in shown
    assert "queued extractions before new misses get RESOURCE_EXHAUSTED" in shown


def test_every_domain_error_kind_has_one_status() -> None:
    from services.common.errors import ErrorKind
    from services.common.grpc_errors import STATUS_OF_KIND, kind_of

    assert set(STATUS_OF_KIND) == set(ErrorKind)
    for code in STATUS_OF_KIND.values():
        assert STATUS_OF_KIND[kind_of(code)] == code  # a relayed status keeps its code


def test_domain_layers_do_not_import_grpc() -> None:
    """Errors, cores, caches and registries stay free of the transport (the grpc layer maps them)."""
    import ast
    from pathlib import Path

    from services.common.paths import REPO_ROOT

    domain = [
        "services/common/errors.py",
        "services/embedder/core.py",
        "services/embedder/cache",
        "services/embedder/voices",
        "services/embedder/audio.py",
        "services/synthesizer/core.py",
        "services/synthesizer/backends",
    ]
    files = [p for d in domain for p in ([REPO_ROOT / d] if d.endswith(".py") else (REPO_ROOT / d).rglob("*.py"))]
    for path in files:
        tree = ast.parse(Path(path).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        leaks = {m for m in imported if m.split(".")[0] == "grpc" or m.startswith("voxcache.v1")}
        assert not leaks, f"{path.relative_to(REPO_ROOT)} imports {sorted(leaks)}"
