"""The gRPC side of authentication: every call is authenticated before its handler runs.

A server interceptor cannot see the TLS peer, only the method name and headers, so it wraps
the method's handler instead: the wrapper asks the `Authenticator` with the call's metadata
and client certificate, refuses with UNAUTHENTICATED / PERMISSION_DENIED, or runs the
handler with the caller's `Principal` in `current_principal` (a context variable, so the
servicer, and the Synthesizer's call to the Embedder, read it without it being threaded
through every signature). Health and reflection stay open: probes and grpcurl need them and
they reveal no tenant's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any

import grpc
from grpc_status import rpc_status

from services.common.auth import ANONYMOUS, TENANT_HEADER, Authenticator, Principal
from services.common.errors import ServiceError
from services.common.grpc_errors import to_rpc_status
from services.common.handler_wrap import rewrap

#: The authenticated caller of the call being served (ANONYMOUS outside any call).
current_principal: ContextVar[Principal] = ContextVar("voxcache_principal", default=ANONYMOUS)

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.")


def peer_common_name(context: grpc.aio.ServicerContext) -> str | None:
    """The client certificate's CN when the connection is mTLS with a verified client."""
    names = context.auth_context().get("x509_common_name")
    return names[0].decode() if names else None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        if self.authenticator.anonymous and not any(
            key == TENANT_HEADER for key, _ in handler_call_details.invocation_metadata or ()
        ):
            return handler  # one tenant and nothing claimed: the hot path pays for no wrapper
        return _wrap(handler, self._principal)

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        metadata = {key.lower(): value for key, value in context.invocation_metadata() or () if isinstance(value, str)}
        try:
            return self.authenticator.authenticate(metadata, peer_common_name(context))
        except ServiceError as error:
            status = rpc_status.to_status(to_rpc_status(error))
            await context.abort(status.code, status.details, status.trailing_metadata)
            raise  # unreachable: abort raises


Who = Callable[[grpc.aio.ServicerContext], Awaitable[Principal]]


def _wrap(handler: grpc.RpcMethodHandler, who: Who) -> grpc.RpcMethodHandler:
    """The same handler, run as the authenticated principal (all four call shapes).

    Each call runs in its own asyncio task, so the context variable set here is that call's
    alone and needs no reset.
    """

    def unary(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            current_principal.set(await who(context))
            return await behavior(request, context)

        return run

    def streaming(behavior: Any) -> Any:
        async def run(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            current_principal.set(await who(context))
            async for response in behavior(request, context):
                yield response

        return run

    return rewrap(handler, unary, streaming)
