"""Python client for Shoal, the gRPC model-serving platform for image classifiers.

    import shoal_client
    with shoal_client.Client("localhost:9090", token) as client:
        resp = client.predict(["shoe.png", "bag.png"], model="fashion", top_k=3)
        for ev in client.watch_job(job_id):
            ...

:class:`Client` holds the helpers (predict, watch_job, upload_dir) and the
generated stubs for everything else; :mod:`shoal_client.pb` the messages;
:mod:`shoal_client.errors` the typed exceptions the helpers raise.
"""

from shoal_client import pb
from shoal_client.client import DEFAULT_ADDRESS, Client
from shoal_client.errors import (
    Aborted,
    AlreadyExists,
    Cancelled,
    DataLoss,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ShoalError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    Unknown,
    from_rpc_error,
    translate_errors,
)
from shoal_client.upload import UploadResult

__version__ = "0.1.0"

__all__ = [
    "Aborted", "AlreadyExists", "Cancelled", "Client", "DEFAULT_ADDRESS", "DataLoss", "DeadlineExceeded",
    "FailedPrecondition", "Internal", "InvalidArgument", "NotFound", "OutOfRange", "PermissionDenied",
    "ResourceExhausted", "ShoalError", "Unauthenticated", "Unavailable", "Unimplemented", "Unknown",
    "UploadResult", "from_rpc_error", "pb", "translate_errors",
]
