"""The gRPC channel under every voxcache client: message limits, deadlines, error mapping, lifetime.

The Embedder and Synthesizer clients hold their channels the same way; writing it
once keeps them from drifting apart (a message limit raised for one service but
not the other would fail only on large conditioning bundles, far from the cause).
Each client keeps what is its own: its stub, default target and default deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc

from voxcache.errors import VoxcacheError

#: Conditioning bundles of richer encoders run to several MB; audio uploads to 16 MB.
CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]

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


class ChannelClient:
    """A blocking client's channel, default deadline and lifetime; subclasses add their service's stub.

    Every call gets a deadline (the per-call `timeout`, else the client's), so no call
    can hang forever. A caller's own `channel` is used as is (its options are the caller's).
    """

    def __init__(self, target: str, timeout: float, channel: grpc.Channel | None) -> None:
        self._channel = channel or grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        """The per-call timeout if given (and non-zero), else the client's default."""
        return timeout or self.timeout

    def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        """One unary or client-streaming call under its deadline."""
        with rpc_errors():
            return method(request, timeout=self._deadline(timeout))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self: _Sync) -> _Sync:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncChannelClient:
    """The asyncio twin of ChannelClient: same deadlines and errors, awaited."""

    def __init__(self, target: str, timeout: float, channel: grpc.aio.Channel | None) -> None:
        self._channel = channel or grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
        self.timeout = timeout

    def _deadline(self, timeout: float | None) -> float:
        """The per-call timeout if given (and non-zero), else the client's default."""
        return timeout or self.timeout

    async def _call(self, method: Any, request: Any, timeout: float | None) -> Any:
        """One unary or client-streaming call under its deadline."""
        with rpc_errors():
            return await method(request, timeout=self._deadline(timeout))

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self: _Async) -> _Async:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()
