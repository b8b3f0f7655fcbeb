"""Rewrapping a gRPC method handler: what every server interceptor here that must see the call's
context (the TLS peer, the status the handler ended with) does, since a grpc.aio interceptor
only sees the method name and headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

#: Wraps one call shape's behaviour: (request, context) -> response, or -> async iterator of them.
Wrap = Callable[[Any], Any]


def rewrap(handler: grpc.RpcMethodHandler, unary: Wrap, streaming: Wrap) -> grpc.RpcMethodHandler:
    """The same handler with its behaviour wrapped: `unary` for the shapes that answer once,
    `streaming` for those that answer with a stream (the request side is the handler's own)."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, unary),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, streaming),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, unary),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, streaming),
    )
    for attribute, make, wrap in kinds:
        behavior = getattr(handler, attribute)
        if behavior is not None:
            return make(
                wrap(behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler
