"""One exception type for every failed call, with the server's structured details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class VoxcacheError(Exception):
    """A call that ended in a non-OK gRPC status.

    `code` is the grpc.StatusCode; `fields` are the offending request field paths when the
    server attached a google.rpc.BadRequest (`field` is the first); `resource` is
    (resource_type, resource_name) when it attached a google.rpc.ResourceInfo (NOT_FOUND,
    ALREADY_EXISTS).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field: str | None = None,
        *,
        fields: tuple[str, ...] = (),
        resource: tuple[str, str] | None = None,
    ) -> None:
        self.fields = fields or ((field,) if field else ())
        super().__init__(f"{code.name}: {message}" + (f" (field: {', '.join(self.fields)})" if self.fields else ""))
        self.code = code
        self.message = message
        self.field = self.fields[0] if self.fields else None
        self.resource = resource

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> VoxcacheError:
        fields: tuple[str, ...] = ()
        resource = None
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields = tuple(violation.field for violation in bad.field_violations)
            elif detail.Is(error_details_pb2.ResourceInfo.DESCRIPTOR):
                info = error_details_pb2.ResourceInfo()
                detail.Unpack(info)
                resource = (info.resource_type, info.resource_name)
        return cls(error.code(), error.details() or "", fields=fields, resource=resource)  # type: ignore[attr-defined]
