"""Server reflection, both versions, against a real server: comments travel, details resolve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2 as alpha

from services.embedder.server import RunningEmbedder

VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


async def ask(port: int, version: str, **request: str | bool) -> alpha.ServerReflectionResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.stream_stream(
            f"/{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=alpha.ServerReflectionRequest.SerializeToString,
            response_deserializer=alpha.ServerReflectionResponse.FromString,
        )

        async def one() -> AsyncIterator[alpha.ServerReflectionRequest]:
            yield alpha.ServerReflectionRequest(**request)

        (answer,) = [response async for response in call(one())]
        return answer


def files(answer: alpha.ServerReflectionResponse) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    protos = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]
    return {proto.name: proto for proto in protos}


@pytest.mark.parametrize("version", VERSIONS)
async def test_both_versions_list_every_service(embedder_service: RunningEmbedder, version: str) -> None:
    answer = await ask(embedder_service.port, version, list_services="*")
    names = {service.name for service in answer.list_services_response.service}
    assert names == {"voxcache.v1.Embedder", "grpc.health.v1.Health", *(f"{v}.ServerReflection" for v in VERSIONS)}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_method_symbol_resolves_to_its_file_with_comments(
    embedder_service: RunningEmbedder, version: str
) -> None:
    answer = await ask(embedder_service.port, version, file_containing_symbol="voxcache.v1.Embedder.Embed")
    served = files(answer)
    embedder = served["voxcache/v1/embedder.proto"]
    comments = [location.leading_comments for location in embedder.source_code_info.location]
    assert any("Returns the conditioning for reference audio" in c for c in comments)
    assert "voxcache/v1/tensor.proto" in served  # its import comes along
    assert "google/rpc/error_details.proto" in served  # so details (Any) can be decoded


async def test_error_detail_types_and_the_v1_protocol_itself_resolve(embedder_service: RunningEmbedder) -> None:
    for symbol in ("google.rpc.BadRequest", "google.rpc.ResourceInfo", "grpc.reflection.v1.ServerReflection"):
        answer = await ask(embedder_service.port, "grpc.reflection.v1", file_containing_symbol=symbol)
        assert answer.HasField("file_descriptor_response"), symbol
    v1 = files(
        await ask(embedder_service.port, "grpc.reflection.v1", file_by_filename="grpc/reflection/v1/reflection.proto")
    )
    method = v1["grpc/reflection/v1/reflection.proto"].service[0].method[0]
    assert method.input_type == ".grpc.reflection.v1.ServerReflectionRequest"


async def test_unknown_symbols_and_files_are_not_found(embedder_service: RunningEmbedder) -> None:
    for request in ({"file_containing_symbol": "voxcache.v1.Nope"}, {"file_by_filename": "nope.proto"}):
        answer = await ask(embedder_service.port, "grpc.reflection.v1", **request)
        assert answer.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
