"""gRPC server reflection, both protocol versions, with the protos' comments.

grpcio-reflection serves only `grpc.reflection.v1alpha`, from Python's descriptor pool,
whose files carry no source info: `grpcurl describe` then shows no comments, newer tools
(which ask `grpc.reflection.v1` first) fall back or fail, and error details (`google.rpc.*`)
cannot be decoded because their files are not offered. This servicer answers both versions
from one index of serialized FileDescriptorProtos:
- voxcache's own files from the descriptor set `scripts/codegen.sh` writes with
  `--include_source_info` (so comments travel),
- the health and reflection protocols, and `google/rpc/{status,error_details}.proto`, so a
  prober can decode the BadRequest and ResourceInfo details every refusal carries.
v1 and v1alpha messages are identical on the wire (same fields and numbers), so one handler
serves both, with the v1alpha message classes doing the (de)serialising.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable, Iterator
from importlib import resources
from typing import Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FileDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2 as alpha

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, derived from v1alpha's descriptor: same messages,
    new package (the two versions differ in nothing else)."""
    proto = descriptor_pb2.FileDescriptorProto()
    alpha.DESCRIPTOR.CopyToProto(proto)
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    proto.options.Clear()
    _fill_json_names(proto)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    return proto


def _json_name(field: str) -> str:
    """proto3's JSON name: lowerCamelCase (what protoc records and JSON tools print)."""
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _fill_json_names(proto: descriptor_pb2.FileDescriptorProto) -> None:
    """Python's CopyToProto drops json_name; without it tools print these files' fields in
    snake_case while protoc-built files print camelCase. Restore it so all agree."""

    def fill(messages: Iterable[descriptor_pb2.DescriptorProto]) -> None:
        for message in messages:
            for field in message.field:
                if not field.HasField("json_name"):
                    field.json_name = _json_name(field.name)
            fill(message.nested_type)

    fill(proto.message_type)


def _with_dependencies(files: Iterable[FileDescriptor]) -> Iterator[FileDescriptor]:
    seen: set[str] = set()
    stack = list(files)
    while stack:
        file = stack.pop()
        if file.name not in seen:
            seen.add(file.name)
            yield file
            stack.extend(file.dependencies)


def _symbols(proto: descriptor_pb2.FileDescriptorProto) -> Iterator[str]:
    """Every fully-qualified name a client may ask for: messages (nested), enums, services, methods."""
    prefix = f"{proto.package}." if proto.package else ""

    def messages(items: Iterable[descriptor_pb2.DescriptorProto], scope: str) -> Iterator[str]:
        for message in items:
            name = scope + message.name
            yield name
            yield from (f"{name}.{enum.name}" for enum in message.enum_type)
            yield from messages(message.nested_type, name + ".")

    yield from messages(proto.message_type, prefix)
    yield from (prefix + enum.name for enum in proto.enum_type)
    yield from (prefix + extension.name for extension in proto.extension)
    for service in proto.service:
        yield prefix + service.name
        yield from (f"{prefix}{service.name}.{method.name}" for method in service.method)


class DescriptorIndex:
    """Serialized files by name, the file of every symbol, and each file's dependencies."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto], always_with: Iterable[str] = ()) -> None:
        #: Files sent along with every answer: error details are `Any`s that no service file
        #: imports, and tools such as `buf curl` resolve types only from files they were sent.
        self._always_with = list(always_with)
        self._files: dict[str, bytes] = {}
        self._dependencies: dict[str, list[str]] = {}
        self._by_symbol: dict[str, str] = {}
        for proto in files:
            self._files[proto.name] = proto.SerializeToString()
            self._dependencies[proto.name] = list(proto.dependency)
            for symbol in _symbols(proto):
                self._by_symbol[symbol] = proto.name

    @classmethod
    @functools.cache
    def for_voxcache(cls) -> DescriptorIndex:
        own = descriptor_pb2.FileDescriptorSet.FromString(
            resources.files("voxcache.v1").joinpath("voxcache.binpb").read_bytes()
        )
        protos: dict[str, descriptor_pb2.FileDescriptorProto] = {}
        served = [health_pb2.DESCRIPTOR, alpha.DESCRIPTOR, status_pb2.DESCRIPTOR, error_details_pb2.DESCRIPTOR]
        for file in _with_dependencies(served):
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            _fill_json_names(proto)
            protos[proto.name] = proto
        v1 = _v1_file()
        protos[v1.name] = v1
        for proto in own.file:  # with source info: these win over any copy without comments
            protos[proto.name] = proto
        return cls(protos.values(), always_with=[error_details_pb2.DESCRIPTOR.name, status_pb2.DESCRIPTOR.name])

    def file_closure(self, name: str) -> list[bytes]:
        """The named file first, then everything it imports, then the error-detail files, each once."""
        ordered, stack, seen = [], [name, *self._always_with], set()
        while stack:
            current = stack.pop(0)
            if current in seen or current not in self._files:
                continue
            seen.add(current)
            ordered.append(self._files[current])
            stack.extend(self._dependencies[current])
        return ordered

    def file_of(self, symbol: str) -> str | None:
        return self._by_symbol.get(symbol.lstrip("."))

    def has_file(self, name: str) -> bool:
        return name in self._files


class ReflectionService:
    """Answers ServerReflectionInfo for both protocol versions from a DescriptorIndex."""

    def __init__(self, service_names: Iterable[str], index: DescriptorIndex) -> None:
        self._services = sorted({*service_names, V1, V1ALPHA})
        self._index = index

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        method = grpc.stream_stream_rpc_method_handler(
            self._info,
            request_deserializer=alpha.ServerReflectionRequest.FromString,
            response_serializer=alpha.ServerReflectionResponse.SerializeToString,
        )
        return [grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": method}) for name in (V1, V1ALPHA)]

    async def _info(
        self, requests: AsyncIterator[alpha.ServerReflectionRequest], context: Any
    ) -> AsyncIterator[alpha.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: alpha.ServerReflectionRequest) -> alpha.ServerReflectionResponse:
        kind = request.WhichOneof("message_request")
        if kind == "list_services":
            return alpha.ServerReflectionResponse(
                original_request=request,
                list_services_response=alpha.ListServiceResponse(
                    service=[alpha.ServiceResponse(name=name) for name in self._services]
                ),
            )
        if kind == "file_by_filename":
            name = request.file_by_filename
            return self._files(request, name if self._index.has_file(name) else None)
        if kind == "file_containing_symbol":
            return self._files(request, self._index.file_of(request.file_containing_symbol))
        if kind == "all_extension_numbers_of_type":
            type_name = request.all_extension_numbers_of_type
            if self._index.file_of(type_name) is None:
                return self._error(request, grpc.StatusCode.NOT_FOUND, f"unknown type {type_name}")
            return alpha.ServerReflectionResponse(  # none of the served types has extensions
                original_request=request,
                all_extension_numbers_response=alpha.ExtensionNumberResponse(base_type_name=type_name),
            )
        if kind == "file_containing_extension":
            return self._error(request, grpc.StatusCode.NOT_FOUND, "no served file declares extensions")
        return self._error(request, grpc.StatusCode.INVALID_ARGUMENT, "empty reflection request")

    def _files(self, request: alpha.ServerReflectionRequest, name: str | None) -> alpha.ServerReflectionResponse:
        if name is None:
            return self._error(request, grpc.StatusCode.NOT_FOUND, "not found")
        return alpha.ServerReflectionResponse(
            original_request=request,
            file_descriptor_response=alpha.FileDescriptorResponse(file_descriptor_proto=self._index.file_closure(name)),
        )

    @staticmethod
    def _error(
        request: alpha.ServerReflectionRequest, code: grpc.StatusCode, message: str
    ) -> alpha.ServerReflectionResponse:
        return alpha.ServerReflectionResponse(
            original_request=request,
            error_response=alpha.ErrorResponse(error_code=code.value[0], error_message=message),
        )
