"""The Synthesizer's one channel to the Embedder: deadlines, retries, limits, error mapping.

One long-lived channel (HTTP/2 multiplexes every request over it) with keepalive
pings spaced as grpc-go and grpc-java servers accept by default (>= 5 min without
calls is their enforcement floor; we ping only while calls are active, every 30 s,
well above the 10 s our own servers permit). Each call gets the caller's
remaining deadline minus a margin, so the Synthesizer can still answer in time.
An unreachable Embedder fails fast with UNAVAILABLE naming its address.

The channel is TLS (mTLS with a client certificate) when the settings give a CA or a
client certificate, and every call carries the Synthesizer's own bearer token, if set.
Per-call metadata (e.g. the tenant a request is made for) is the `metadata` argument of
`embed`: `_metadata` joins it to the token, in one place.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from services.common import tracing
from services.common.auth import TENANT_HEADER
from services.common.auth_interceptor import current_principal
from services.common.errors import DeadlineExceeded, ErrorKind, Resource, ServiceError, Unavailable
from services.common.grpc_errors import kind_of
from voxcache import tensors
from voxcache.channel import CHANNEL_OPTIONS as SDK_CHANNEL_OPTIONS
from voxcache.channel import Metadata, token_metadata
from voxcache.errors import VoxcacheError
from voxcache.tls import TLS
from voxcache.v1 import embedder_pb2 as pb
from voxcache.v1 import embedder_pb2_grpc

log = logging.getLogger(__name__)

_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": "voxcache.v1.Embedder"}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS: tuple[tuple[str, int | str], ...] = (
    *SDK_CHANNEL_OPTIONS,  # 64 MB messages: multi-MB IndexTTS2 bundles pass
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", _SERVICE_CONFIG),
)
#: Fields of the Embedder's requests as the Synthesizer's callers know them.
_FIELD_NAMES = {"audio": "reference_audio", "voice_id": "voice_id", "encoder": "backend"}


@dataclass(frozen=True)
class EmbedderAnswer:
    tensors: dict[str, np.ndarray]
    cache_hit: bool
    cache_key: str


class EmbedderGateway:
    def __init__(
        self,
        address: str,
        *,
        margin_s: float,
        default_timeout_s: float,
        tls: TLS | None = None,
        token: str = "",
    ) -> None:
        """`tls`: how to reach a TLS Embedder (files are read and checked here, so a bad path
        stops the Synthesizer at start); `token`: sent as `authorization: Bearer ...` on every call."""
        self.address = address
        self.margin_s = margin_s
        self.default_timeout_s = default_timeout_s
        self._token_metadata = token_metadata(token)
        options = [*CHANNEL_OPTIONS, *(tls.options() if tls else [])]
        # With tracing on, each Embed is a client span whose context travels as `traceparent`.
        interceptors = tracing.client_interceptors()
        if tls is None:
            self._channel = grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)
        else:
            self._channel = grpc.aio.secure_channel(
                address, tls.credentials(), options=options, interceptors=interceptors
            )
        self._stub = embedder_pb2_grpc.EmbedderStub(self._channel)

    def _metadata(self, extra: Sequence[tuple[str, str]]) -> Metadata:
        """The metadata of one call: this Synthesizer's token, the tenant it calls for, then what
        the call adds. The Synthesizer calls as itself, naming the tenant of the request it serves
        (the Embedder accepts that header only from a delegate); the anonymous tenant names none."""
        tenant = current_principal.get().tenant
        return (*self._token_metadata, *(((TENANT_HEADER, tenant),) if tenant else ()), *extra)

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.default_timeout_s
        remaining = deadline - time.monotonic() - self.margin_s
        if remaining <= 0:
            raise DeadlineExceeded("deadline too short to ask the Embedder for the voice conditioning")
        return remaining

    async def embed(
        self,
        *,
        audio: bytes | None = None,
        voice_id: str | None = None,
        encoder: str,
        deadline: float | None = None,
        pin: bool = False,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> EmbedderAnswer:
        if voice_id is not None:
            request = pb.EmbedRequest(voice_id=voice_id, encoder=encoder, cache=pb.CacheOptions(pin=pin))
        else:
            request = pb.EmbedRequest(audio=audio or b"", encoder=encoder, cache=pb.CacheOptions(pin=pin))
        try:
            response = await self._stub.Embed(
                request, timeout=self._timeout(deadline), metadata=self._metadata(metadata)
            )
        except grpc.aio.AioRpcError as error:
            raise self._translate(error) from None
        return EmbedderAnswer(
            tensors=tensors.map_from_proto(response.conditioning.tensors),
            cache_hit=response.cache_hit,
            cache_key=response.conditioning.cache_key,
        )

    async def score(
        self,
        *,
        audio: bytes,
        reference_audio: bytes | None = None,
        voice_id: str | None = None,
        speaker: np.ndarray | None = None,
        backend: str,
        deadline: float | None = None,
    ) -> float:
        """ScoreSpeaker: the cosine between `audio` and the reference (one of the three), counted under `backend`."""
        request = pb.ScoreSpeakerRequest(audio=audio, backend=backend)
        if speaker is not None:
            request.reference_conditioning.encoder = "ecapa"
            tensors.map_to_proto({tensors.SPEAKER: speaker}, request.reference_conditioning.tensors)
        elif voice_id is not None:
            request.voice_id = voice_id
        else:
            request.reference_audio = reference_audio or b""
        try:
            response = await self._stub.ScoreSpeaker(
                request, timeout=self._timeout(deadline), metadata=self._metadata(())
            )
        except grpc.aio.AioRpcError as error:
            raise self._translate(error) from None
        return response.speaker_similarity

    def _translate(self, error: grpc.aio.AioRpcError) -> ServiceError:
        code = error.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            # The Synthesizer's own credentials, not the caller's: relaying the code would send
            # the caller to fix a token that is fine.
            log.error("the Embedder refused this Synthesizer's credentials: %s %s", code.name, error.details())
            return ServiceError(
                f"the Embedder at {self.address} refused the Synthesizer ({code.name}: {error.details()}); "
                "the operator must fix the Synthesizer's Embedder credentials or the Embedder's --auth-delegates",
                kind=ErrorKind.INTERNAL,
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return Unavailable(f"Embedder at {self.address} is unreachable: {error.details()}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return DeadlineExceeded(f"Embedder at {self.address} did not answer before the deadline")
        relayed = VoxcacheError.from_rpc_error(error)
        return ServiceError(
            f"Embedder: {relayed.message}",
            fields=tuple(_FIELD_NAMES.get(field, field) for field in relayed.fields),
            resource=Resource(*relayed.resource) if relayed.resource else None,
            kind=kind_of(code),
        )

    async def close(self) -> None:
        await self._channel.close()
