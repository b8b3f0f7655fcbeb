"""One exception type for every failed call, with the server's structured details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


class VoxcacheError(Exception):
    """A call that ended in a non-OK gRPC status.

    `code` is the grpc.StatusCode; `field` names the offending request field when
    the server attached a google.rpc.BadRequest (INVALID_ARGUMENT and friends).
    """

    def __init__(self, code: grpc.StatusCode, message: str, field: str | None = None) -> None:
        super().__init__(f"{code.name}: {message}" + (f" (field: {field})" if field else ""))
        self.code = code
        self.message = message
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> VoxcacheError:
        field = None
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                if bad.field_violations:
                    field = bad.field_violations[0].field
        return cls(error.code(), error.details() or "", field)  # type: ignore[attr-defined]
