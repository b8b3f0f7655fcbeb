"""Domain errors: what went wrong, in the service's own words, with no transport in sight.

Core classes raise these; only the gRPC layer (`services/common/grpc_errors.py`) knows
which status code and `google.rpc` details each kind becomes. A kind says what the caller
can do about it (fix the input, back off, register the voice first), not how it travels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorKind(enum.Enum):
    INVALID_INPUT = "invalid_input"
    TOO_LARGE = "too_large"
    OVERLOADED = "overloaded"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    INTERNAL = "internal"


@dataclass(frozen=True)
class Resource:
    """The thing a request named that is missing or taken: its type and name."""

    type: str
    name: str


class ServiceError(Exception):
    """A request the service refuses for a reason the caller can act on."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        fields: tuple[str, ...] = (),
        resource: Resource | None = None,
        kind: ErrorKind | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: The request fields at fault, as field paths (each becomes a BadRequest violation);
        #: several when the fault is a choice among them (a oneof left empty).
        self.fields = (field, *fields) if field else fields
        self.field = self.fields[0] if self.fields else None
        #: For NOT_FOUND / ALREADY_EXISTS: which resource (becomes a ResourceInfo detail).
        self.resource = resource
        if kind is not None:  # e.g. relaying another service's refusal unchanged
            self.kind = kind


class InvalidInput(ServiceError):
    kind = ErrorKind.INVALID_INPUT


class TooLarge(ServiceError):
    kind = ErrorKind.TOO_LARGE


class Overloaded(ServiceError):
    kind = ErrorKind.OVERLOADED


class NotFound(ServiceError):
    kind = ErrorKind.NOT_FOUND


class AlreadyExists(ServiceError):
    kind = ErrorKind.ALREADY_EXISTS


class Unavailable(ServiceError):
    kind = ErrorKind.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    kind = ErrorKind.DEADLINE_EXCEEDED
