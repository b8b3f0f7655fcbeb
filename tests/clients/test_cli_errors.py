"""Failed calls as one line in CLI terms (voxcache/cli_errors.py): flags and commands, never RPC fields."""

from __future__ import annotations

import grpc

from voxcache.cli_errors import REGISTER_FIELDS, SAY_FIELDS, Target, describe
from voxcache.errors import VoxcacheError

EMBEDDER = Target("Embedder", "127.0.0.1:50051", "--embedder")
SYNTHESIZER = Target("Synthesizer", "127.0.0.1:50052", "--synthesizer")


def error(code: grpc.StatusCode, message: str, *fields: str, resource: tuple[str, str] | None = None) -> VoxcacheError:
    return VoxcacheError(code, message, fields=fields, resource=resource)


def test_server_refusals_name_flags_and_commands() -> None:
    voice = ("voxcache.v1.Voice", "nobody")
    missing = error(
        grpc.StatusCode.NOT_FOUND,
        "Embedder: voice 'nobody' is not registered; register it first (voxcache voices register)",
        "voice_id",
        resource=voice,
    )
    line = describe(missing, SYNTHESIZER, SAY_FIELDS, 120)
    assert "register it with `voxcache voices register nobody CLIP`" in line and "Embedder:" not in line
    taken = error(grpc.StatusCode.ALREADY_EXISTS, "voice 'nobody' already exists; set overwrite to replace it")
    taken = error(taken.code, taken.message, "voice_id", resource=voice)
    line = describe(taken, EMBEDDER, REGISTER_FIELDS, 120)
    assert line == "voice 'nobody' already exists; pass --overwrite to replace it"
    speed = error(grpc.StatusCode.INVALID_ARGUMENT, "speed 3 is outside 0.5-2", "speed")
    assert describe(speed, SYNTHESIZER, SAY_FIELDS, 120) == "speed 3 is outside 0.5-2; check --speed"
    option = error(grpc.StatusCode.INVALID_ARGUMENT, "kokoro has no voice 'zz'", "backend_options[voice]")
    assert describe(option, SYNTHESIZER, SAY_FIELDS, 120).endswith("check --option voice=VALUE")
    clip = error(grpc.StatusCode.INVALID_ARGUMENT, "Embedder: audio is silent", "reference_audio")
    assert describe(clip, SYNTHESIZER, SAY_FIELDS, 120).endswith("check --voice")
    name = error(grpc.StatusCode.INVALID_ARGUMENT, "voice_id 'a b' is invalid", "voice_id")
    assert describe(name, EMBEDDER, REGISTER_FIELDS, 120).endswith("check NAME")


def test_transport_failures_say_where_and_what_to_do() -> None:
    refused = error(
        grpc.StatusCode.UNAVAILABLE,
        "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:50052: "
        "Failed to connect to remote host: Connection refused",
    )
    line = describe(refused, SYNTHESIZER, {}, 120)
    assert line.startswith("cannot reach the Synthesizer at 127.0.0.1:50052 (connection refused)")
    assert "`voxcache up`" in line and "--synthesizer" in line and "failed to connect" not in line
    swapped = error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
    line = describe(swapped, EMBEDDER, {}, 120)
    assert "127.0.0.1:50051 answers, but it is not the Embedder" in line and "--embedder" in line
    relayed = error(grpc.StatusCode.UNAVAILABLE, "Embedder at 127.0.0.1:50051 is unreachable: failed to connect")
    assert "cannot reach its Embedder at 127.0.0.1:50051" in describe(relayed, SYNTHESIZER, {}, 120)
    slow = error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    line = describe(slow, SYNTHESIZER, {}, 120)
    assert "within 120 s" in line and "--timeout SECONDS" in line
