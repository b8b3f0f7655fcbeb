"""`voxcache up` (services/launcher.py): persistence, cleanup, port clashes and readiness."""

from __future__ import annotations

from pathlib import Path

import redis

from services.common.redis_server import LocalRedis


# -- the Redis data folder ---------------------------------------------------------------
def test_redis_with_a_data_folder_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    first = LocalRedis(data_dir=folder).start()
    try:
        redis.Redis(port=first.port).set("voice", b"kept")
    finally:
        first.close()
    assert (folder / "appendonlydir").is_dir()  # close() keeps a data folder
    second = LocalRedis(data_dir=folder).start()
    try:
        assert redis.Redis(port=second.port).get("voice") == b"kept"
    finally:
        second.close()


def test_redis_without_a_data_folder_removes_its_temp_folder(tmp_path: Path) -> None:
    throwaway = LocalRedis().start()
    folder = throwaway.dir
    assert folder.is_dir() and folder.name.startswith("voxcache-redis-")
    throwaway.close()
    assert not folder.exists()
