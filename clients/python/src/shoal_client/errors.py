"""Typed exceptions for the gRPC status codes Shoal answers with.

Every helper of :class:`shoal_client.Client` raises a subclass of
:class:`ShoalError`, chosen by the call's status code, so callers can write
``except shoal_client.NotFound:``. The raw stubs raise ``grpc.RpcError``;
wrap their calls in :func:`translate_errors` to get the same typed errors::

    with shoal_client.translate_errors():
        client.registry.GetVersion(pb.registry.GetVersionRequest(model="nope"))

:class:`ShoalError` is itself a ``grpc.RpcError`` with ``code()`` and
``details()``, so code written against grpc keeps working.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Optional

import grpc


class ShoalError(grpc.RpcError):
    """A failed call: its gRPC status code and the server's message."""

    status_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: Optional[grpc.StatusCode] = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.status_code = code

    def code(self) -> grpc.StatusCode:
        """The gRPC status code, as ``grpc.Call.code()`` gives it."""
        return self.status_code

    def details(self) -> str:
        """The server's message, as ``grpc.Call.details()`` gives it."""
        return self.message

    def __str__(self) -> str:
        return f"{self.status_code.name}: {self.message}"


class Cancelled(ShoalError):
    """The call was cancelled, usually by the caller."""

    status_code = grpc.StatusCode.CANCELLED


class Unknown(ShoalError):
    """An error without a more specific code."""

    status_code = grpc.StatusCode.UNKNOWN


class InvalidArgument(ShoalError):
    """The request's values were refused (a bad name, not an image, ...)."""

    status_code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(ShoalError):
    """The call's time bound passed before an answer came."""

    status_code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(ShoalError):
    """The dataset, model, version, job or image does not exist."""

    status_code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ShoalError):
    """Something of that name exists already."""

    status_code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(ShoalError):
    """The token is valid but lacks the scope the call needs."""

    status_code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(ShoalError):
    """A rate limit, queue or size bound was hit; retrying later may help."""

    status_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(ShoalError):
    """The current state forbids the call (e.g. cancelling a finished job)."""

    status_code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(ShoalError):
    """The call lost a race with another change; retrying may help."""

    status_code = grpc.StatusCode.ABORTED


class OutOfRange(ShoalError):
    """A value is outside the range the server accepts."""

    status_code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(ShoalError):
    """The server does not offer this call (an older server, another target)."""

    status_code = grpc.StatusCode.UNIMPLEMENTED


class Internal(ShoalError):
    """The server failed; its log has the reason."""

    status_code = grpc.StatusCode.INTERNAL


class Unavailable(ShoalError):
    """The server is unreachable, restarting or shutting down; retry."""

    status_code = grpc.StatusCode.UNAVAILABLE


class DataLoss(ShoalError):
    """Stored data was found damaged."""

    status_code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(ShoalError):
    """The call needs a token, or the token is unknown, revoked or expired."""

    status_code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE = {
    cls.status_code: cls
    for cls in (
        Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
        PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
        Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated,
    )
}


def from_rpc_error(err: grpc.RpcError) -> ShoalError:
    """Returns the typed error for a failed call's ``grpc.RpcError``."""
    if isinstance(err, ShoalError):
        return err
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, ShoalError)
    return cls(details or code.name, code)


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raises a ``grpc.RpcError`` from the block as its typed error."""
    try:
        yield
    except ShoalError:
        raise
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err
