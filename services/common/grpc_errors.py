"""The one table from domain error kinds to gRPC status codes, and the rich status built from it.

Callers in Go and Java get a status code they can switch on plus a `google.rpc.BadRequest`
naming the field at fault; grpcurl users get the readable message. Nothing outside the gRPC
layer imports this module.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from services.common.errors import ErrorKind, ServiceError

STATUS_OF_KIND: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}

#: The reverse, for relaying a peer's status as a domain error. RESOURCE_EXHAUSTED is read
#: as "overloaded" (back off and retry), the more common and the safer reading.
KIND_OF_STATUS: dict[grpc.StatusCode, ErrorKind] = {
    **{code: kind for kind, code in STATUS_OF_KIND.items() if kind is not ErrorKind.TOO_LARGE},
}


def status_code(error: ServiceError) -> grpc.StatusCode:
    return STATUS_OF_KIND[error.kind]


def kind_of(code: grpc.StatusCode) -> ErrorKind:
    """The domain kind for a peer's status; codes with no domain meaning are INTERNAL."""
    return KIND_OF_STATUS.get(code, ErrorKind.INTERNAL)


def to_rpc_status(error: ServiceError) -> status_pb2.Status:
    """Build the google.rpc.Status: BadRequest when fields are named, ResourceInfo when a resource is."""
    status = status_pb2.Status(code=getattr(code_pb2, status_code(error).name), message=error.message)
    if error.resource is not None:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ResourceInfo(
                resource_type=error.resource.type, resource_name=error.resource.name, description=error.message
            )
        )
        status.details.append(detail)
    if error.fields:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=error.message)
                    for field in error.fields
                ]
            )
        )
        status.details.append(detail)
    return status
