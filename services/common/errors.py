"""Domain errors and their one mapping to gRPC status + google.rpc details.

Core classes raise these without knowing about gRPC; the servicer layer turns
them into a status with a `BadRequest` naming the field, so Go/Java callers get
structured details and grpcurl users get a readable message.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2


class ServiceError(Exception):
    """Base class: a request the service refuses for a reason the caller can act on."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, field: str | None = None, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:  # e.g. relaying a status from another service unchanged
            self.code = code


class InvalidInput(ServiceError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class TooLarge(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Overloaded(ServiceError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


def to_rpc_status(error: ServiceError) -> status_pb2.Status:
    """Build the google.rpc.Status (with BadRequest when a field is named)."""
    status = status_pb2.Status(code=getattr(code_pb2, error.code.name), message=error.message)
    if error.field:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.message)
                ]
            )
        )
        status.details.append(detail)
    return status
