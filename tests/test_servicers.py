"""Every RPC the protos declare is implemented by our servicer and goes through the error mapper.

A method left without `rpc_errors` answers a refused request with UNKNOWN and the exception's
repr instead of its status and message (this happened once, to ScoreSpeaker, in a merge).
"""

from __future__ import annotations

import pytest

from services.embedder.servicer import EmbedderServicer
from services.synthesizer.servicer import SynthesizerServicer
from voxcache.v1 import embedder_pb2, synthesizer_pb2


@pytest.mark.parametrize(
    ("servicer", "service"),
    [
        (EmbedderServicer, embedder_pb2.DESCRIPTOR.services_by_name["Embedder"]),
        (SynthesizerServicer, synthesizer_pb2.DESCRIPTOR.services_by_name["Synthesizer"]),
    ],
)
def test_every_rpc_is_ours_and_maps_errors(servicer: type, service: object) -> None:
    for method in service.methods:  # type: ignore[attr-defined]
        handler = servicer.__dict__.get(method.name)
        assert handler is not None, f"{service.full_name}.{method.name} is not implemented by {servicer.__name__}"  # type: ignore[attr-defined]
        assert hasattr(handler, "__wrapped__"), f"{servicer.__name__}.{method.name} lacks rpc_errors/rpc_stream_errors"
