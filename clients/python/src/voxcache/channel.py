"""The gRPC channel under every voxcache client: message limits, deadlines, error mapping, lifetime.

The Embedder and Synthesizer clients hold their channels the same way; writing it
once keeps them from drifting apart (a message limit raised for one service but
not the other would fail only on large conditioning bundles, far from the cause).
Each client keeps what is its own: its stub, default target and default deadline.

Security is set here too, once for both: `tls=` (a `voxcache.tls.TLS`) makes the channel a
TLS one (mTLS with a client certificate), and `token=` sends `authorization: Bearer <token>`
on every call. The token travels as call metadata rather than gRPC call credentials
because gRPC refuses call credentials on a plaintext channel, and a token on loopback
without TLS is a supported set-up (a sidecar terminating TLS, a local stack).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from voxcache.errors import VoxcacheError
from voxcache.tls import TLS

#: Conditioning bundles of richer encoders run to several MB; audio uploads to 16 MB.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

Metadata = tuple[tuple[str, str], ...]

_Sync = TypeVar("_Sync", bound="ChannelClient")
_Async = TypeVar("_Async", bound="AsyncChannelClient")


@contextmanager
def rpc_errors() -> Iterator[None]:
    """Raise a failed call as VoxcacheError, so callers catch one type that carries the offending field.

    A context manager rather than a call wrapper so that streaming methods can keep
    their single generator (no extra layer between the caller and the gRPC stream).
    """
    try:
        yield
    except grpc.RpcError as error:
        raise VoxcacheError.from_rpc_error(error) from None


def token_metadata(token: str | None) -> Metadata:
    """`authorization: Bearer <token>` as call metadata; nothing without a token.

    A token gRPC cannot send (a newline, a non-ASCII character, surrounding spaces from a
    pasted file) is refused here, at construction, without echoing it: it is a secret.
    """
    if not token:
        return ()
    if token != token.strip() or not token.isascii() or not token.isprintable():
        raise ValueError(
            "the token has spaces around it, a line break or a non-ASCII character; "
            "gRPC metadata cannot carry it (the token is not shown: it is a secret)"
        )
    return (("authorization", f"Bearer {token}"),)


def secure_or_plain(target: str, tls: TLS | None, *, aio: bool) -> Any:
    """A TLS channel when `tls` is given, else a plaintext one, with the shared options."""
    options = [*CHANNEL_OPTIONS, *(tls.options() if tls else [])]
    module: Any = grpc.aio if aio else grpc
    if tls is None:
        return module.insecure_channel(target, options=options)
    return module.secure_channel(target, tls.credentials(), options=options)


class ChannelClient:
    """A blocking client's channel, default deadline and lifetime; subclasses add their service's stub.

    Every call gets a deadline (the per-call `timeout`, else the client's), so no call
    can hang forever. A caller's own `channel` is used as is (its options and TLS are the
    caller's; `token` is still sent on every call).
    """

    def __init__(
        self, target: str, timeout: float, channel: grpc.Channel | None, tls: TLS | None, token: str | None
    ) -> None:
        self._metadata = token_metadata(token)
        self._channel = channel or secure_or_plain(target, tls, aio=False)
        self.timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        """The per-call timeout if given (and non-zero), else the client's default."""
        return timeout or self.timeout

    def _call_options(self, timeout: float | None) -> dict[str, Any]:
        """What every call passes: its deadline and the token's metadata (streams included)."""
        return {"timeout": self._deadline(timeout), "metadata": self._metadata}

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        """One unary or client-streaming call under its deadline."""
        with rpc_errors():
            return method(request, **self._call_options(timeout))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self: _Sync) -> _Sync:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncChannelClient:
    """The asyncio twin of ChannelClient: same deadlines and errors, awaited."""

    def __init__(
        self, target: str, timeout: float, channel: grpc.aio.Channel | None, tls: TLS | None, token: str | None
    ) -> None:
        self._metadata = token_metadata(token)
        self._channel = channel or secure_or_plain(target, tls, aio=True)
        self.timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        """The per-call timeout if given (and non-zero), else the client's default."""
        return timeout or self.timeout

    def _call_options(self, timeout: float | None) -> dict[str, Any]:
        """What every call passes: its deadline and the token's metadata (streams included)."""
        return {"timeout": self._deadline(timeout), "metadata": self._metadata}

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        """One unary or client-streaming call under its deadline."""
        with rpc_errors():
            return await method(request, **self._call_options(timeout))

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self: _Async) -> _Async:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
