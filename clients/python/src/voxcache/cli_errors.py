"""Failed calls as one line in the command line's own terms.

A server speaks of RPC fields (`voice_id`, `overwrite`, `backend_options[voice]`);
someone at a shell typed flags and arguments. So each error names the flag or
argument at fault, what to do about it in `voxcache` commands, and, for connection
problems, which address could not be reached and which flag points elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import grpc

from voxcache.errors import VoxcacheError

VOICE_RESOURCE = "voxcache.v1.Voice"
#: The Synthesizer's prefix when it relays a failure of its own Embedder.
_RELAYED_UNREACHABLE = re.compile(r"^Embedder at (\S+) is unreachable")
#: A request field path with a key, as servers name backend options: backend_options[voice].
_KEYED = re.compile(r"^(\w+)\[(.+)\]$")

#: Request fields -> what the user typed, per command (error hints name these).
SAY_FIELDS = {
    "text": "TEXT",
    "reference_audio": "--voice",
    "audio": "--voice",
    "voice_id": "--voice-id",
    "language": "--language",
    "speed": "--speed",
    "backend": "--backend",
    "backend_options": "--option",
}
REGISTER_FIELDS = {"voice_id": "NAME", "audio": "CLIP", "overwrite": "--overwrite"}
DELETE_FIELDS = {"voice_id": "NAME"}
SEARCH_FIELDS = {"audio": "--voice", "voice_id": "--voice-id", "k": "-k", "encoder": "--encoder"}


class CliError(Exception):
    """A failure the command explains itself: `message` is the whole line after 'error: '."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Target:
    """Which service a command talked to, where, and the flag that says where."""

    service: str
    address: str
    flag: str
    #: Whether the call went over TLS (changes what a closed connection most likely means).
    tls: bool = False


def _flag(field: str, flags: Mapping[str, str]) -> str | None:
    """The CLI flag or argument for a request field path, e.g. backend_options[voice] -> --option voice=VALUE."""
    if field in flags:
        return flags[field]
    keyed = _KEYED.match(field)
    if keyed and keyed.group(1) in flags:
        base = flags[keyed.group(1)]
        return f"{base} {keyed.group(2)}=VALUE" if base == "--option" else base
    return None


def _reason(message: str) -> str:
    """The useful words of gRPC's connection failure text, if any."""
    lowered = message.lower()
    for needle, words in (
        ("certificate_verify_failed", "its certificate is not signed by the CA given with --tls-ca"),
        ("handshake failed", "the TLS handshake failed"),
        ("connection refused", "connection refused"),
        ("dns resolution failed", "no such host"),
        ("domain name not found", "no such host"),
        ("errors resolving", "the host name does not resolve"),
        ("timeout occurred", "timed out"),
        ("deadline exceeded", "timed out"),
        ("no route to host", "no route to host"),
        ("socket closed", "the connection closed"),
    ):
        if needle in lowered:
            return f" ({words})"
    return ""


def describe(error: VoxcacheError, target: Target, flags: Mapping[str, str], timeout_s: float) -> str:
    """One line (without 'error: ') for a failed call, with a hint that names `voxcache` flags and commands.

    `flags` maps the request fields of this command to its flags and arguments.
    """
    code, service, address = error.code, target.service, target.address
    if code is grpc.StatusCode.UNAVAILABLE:
        relayed = _RELAYED_UNREACHABLE.match(error.message)
        if relayed:
            return (
                f"the {service} at {address} cannot reach its Embedder at {relayed.group(1)}; "
                "is the stack still running? `voxcache up` starts both"
            )
        reason = _reason(error.message)
        if "TLS" in reason or "--tls-ca" in reason:
            return f"cannot reach the {service} at {address}{reason}; check --tls-ca, --tls-cert and --tls-key"
        if "closed" in reason:
            # A TLS server closes a plaintext connection, and an mTLS server one without a client certificate.
            hint = "for mTLS pass --tls-cert/--tls-key too" if target.tls else "if it requires TLS, pass --tls-ca"
            return f"cannot reach the {service} at {address}{reason}; {hint}, or point {target.flag} elsewhere"
        return (
            f"cannot reach the {service} at {address}{reason}; "
            f"start the stack with `voxcache up`, or point {target.flag} at a running {service}"
        )
    if code is grpc.StatusCode.UNIMPLEMENTED:
        return (
            f"{address} answers, but it is not the {service} (ports swapped?); "
            f"point {target.flag} at the {service}'s address"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return (
            f"the {service} at {address} did not finish within {timeout_s:g} s; "
            "allow more with --timeout SECONDS (long texts take minutes on a CPU)"
        )
    if error.resource and error.resource[0] == VOICE_RESOURCE:
        name = error.resource[1]
        if code is grpc.StatusCode.NOT_FOUND:
            return (
                f"voice '{name}' is not registered; register it with `voxcache voices register {name} CLIP` "
                "(`voxcache voices list` shows the registered ones)"
            )
        if code is grpc.StatusCode.ALREADY_EXISTS:
            return f"voice '{name}' already exists; pass --overwrite to replace it"
    named = list(dict.fromkeys(flag for field in error.fields if (flag := _flag(field, flags))))
    if named:
        return f"{error.message}; check {' / '.join(named)}"
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        return f"{error.message}; the {service} is busy, try again shortly"
    if code is grpc.StatusCode.INTERNAL:
        return f"the {service} failed: {error.message}; its log (the `voxcache up` terminal) has the details"
    return f"{error.message} ({code.name} from the {service} at {address})"
