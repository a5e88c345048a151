"""The Client: one gRPC channel to Shoal, its credentials, helpers and raw stubs."""

from __future__ import annotations

import collections
import ipaddress
import os
import time
from typing import Callable, Iterable, Iterator, Optional, Union

import grpc

from shoal_client import upload
from shoal_client.errors import ShoalError, Unavailable, Unknown, from_rpc_error, translate_errors
from shoal_client.gen.inference import grpc_predict_v2_pb2_grpc
from shoal_client.gen.shoal.auth.v1 import auth_pb2_grpc
from shoal_client.gen.shoal.dataset.v1 import dataset_pb2_grpc
from shoal_client.gen.shoal.inference.v1 import inference_pb2, inference_pb2_grpc
from shoal_client.gen.shoal.registry.v1 import registry_pb2_grpc
from shoal_client.gen.shoal.trainer.v1 import trainer_pb2, trainer_pb2_grpc

#: Where the client finds the server when neither the address argument nor
#: $SHOAL_ADDR says, as the CLI does.
DEFAULT_ADDRESS = "localhost:9090"

#: Largest message sent or received: the server's default
#: --grpc.max-message-bytes (photos and whole prediction batches fit).
MAX_MESSAGE_BYTES = 64 << 20

_FINAL_STATES = (trainer_pb2.JOB_STATE_SUCCEEDED, trainer_pb2.JOB_STATE_FAILED, trainer_pb2.JOB_STATE_CANCELLED)

Image = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]


class Client:
    """A connection to a Shoal server's gRPC port.

    ``address`` defaults to $SHOAL_ADDR, else ``localhost:9090``; ``token`` (the
    bearer token every call carries) to $SHOAL_TOKEN, else none: anonymous
    calls may predict, by default, and nothing else.

    The transport is TLS unless the server is on this machine (localhost or a
    loopback address), where it is plaintext; ``tls=True`` or ``False`` says so
    explicitly. ``ca_file`` names PEM CAs that sign the server's certificate
    (default: the system's), ``cert_file`` and ``key_file`` a client
    certificate for servers that require one; any of them implies TLS. Like
    the CLI, they default to $SHOAL_TLS, $SHOAL_CA_FILE, $SHOAL_CERT_FILE and
    $SHOAL_KEY_FILE.

    ``timeout`` (seconds) bounds each call of :meth:`predict`; uploads and
    watches run as long as they need unless given their own.

    Everything the helpers do not cover is reachable through the generated
    stubs, which carry the same credentials: :attr:`dataset`,
    :attr:`trainer`, :attr:`registry`, :attr:`inference`, :attr:`auth`, and
    :attr:`oip` for the Open Inference Protocol. Their messages are in
    :mod:`shoal_client.pb`. Use the client as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        address: Optional[str] = None,
        token: Optional[str] = None,
        *,
        tls: Optional[bool] = None,
        ca_file: Optional[str] = None,
        cert_file: Optional[str] = None,
        key_file: Optional[str] = None,
        timeout: Optional[float] = 60.0,
    ):
        self.address = address or os.environ.get("SHOAL_ADDR") or DEFAULT_ADDRESS
        token = token if token is not None else os.environ.get("SHOAL_TOKEN", "")
        ca_file = ca_file or os.environ.get("SHOAL_CA_FILE")
        cert_file = cert_file or os.environ.get("SHOAL_CERT_FILE")
        key_file = key_file or os.environ.get("SHOAL_KEY_FILE")
        if tls is None and os.environ.get("SHOAL_TLS", "").lower() in ("1", "true", "yes", "on"):
            tls = True
        if bool(cert_file) != bool(key_file):
            raise ValueError("cert_file and key_file go together (mutual TLS)")
        if ca_file or cert_file:
            if tls is False:
                raise ValueError("ca_file, cert_file and key_file need TLS; tls=False contradicts them")
            tls = True
        if tls is None:
            tls = not _loopback(self.address)
        self.tls = tls
        self.timeout = timeout

        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if tls:
            creds = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file), private_key=_read(key_file), certificate_chain=_read(cert_file))
            channel = grpc.secure_channel(self.address, creds, options=options)
        else:
            channel = grpc.insecure_channel(self.address, options=options)
        self._raw_channel = channel
        if token.strip():
            channel = grpc.intercept_channel(channel, _Bearer(token.strip()))
        #: The channel every stub uses (with the token, when there is one).
        self.channel: grpc.Channel = channel

        #: Dataset service: datasets, images, imports, snapshots.
        self.dataset = dataset_pb2_grpc.DatasetServiceStub(channel)
        #: Trainer service: training jobs and their events.
        self.trainer = trainer_pb2_grpc.TrainerServiceStub(channel)
        #: Registry service: models, versions, aliases.
        self.registry = registry_pb2_grpc.RegistryServiceStub(channel)
        #: Inference service: Predict and the loaded models.
        self.inference = inference_pb2_grpc.InferenceServiceStub(channel)
        #: Auth service: tokens and the audit trail.
        self.auth = auth_pb2_grpc.AuthServiceStub(channel)
        #: The Open Inference Protocol (KServe v2 / Triton) over the same models.
        self.oip = grpc_predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)

    def close(self) -> None:
        """Closes the channel; calls in flight are cancelled."""
        self._raw_channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def predict(
        self,
        images: Union[Image, Iterable[Image]],
        model: str = "",
        top_k: int = 0,
        *,
        version: int = 0,
        alias: str = "",
        timeout: Optional[float] = None,
    ) -> inference_pb2.PredictResponse:
        """Classifies images in one request (the server batches them).

        ``images`` is one image or a list: a file path, or the encoded bytes
        (JPEG, PNG, GIF, WebP, BMP). ``model`` empty asks the server's default
        model; ``version`` 0 serves ``alias`` (empty: ``production``); ``top_k``
        0 returns the server's default number of labels (5).

        The response holds one ``results[i].labels`` list per image, most
        probable first, and the model and version that answered.
        """
        if isinstance(images, (str, bytes, bytearray, memoryview, os.PathLike)):
            images = [images]
        req = inference_pb2.PredictRequest(
            model=model, version=version, alias=alias, top_k=top_k, images=[_image_bytes(i) for i in images])
        with translate_errors():
            return self.inference.Predict(req, timeout=timeout or self.timeout)

    def watch_job(
        self,
        job_id: str,
        after_sequence: int = 0,
        *,
        max_reconnects: int = 30,
        on_reconnect: Optional[Callable[[ShoalError, int], None]] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[trainer_pb2.WatchJobResponse]:
        """Yields a training job's events: its history, then live ones, until
        its final state (succeeded, failed or cancelled), the last event.

        Each event has a ``sequence``; a watch resumes after one with
        ``after_sequence``. When the connection is lost (UNAVAILABLE: a
        restart, a network cut) after events have come, the iterator
        reconnects and resumes after the last event it yielded, so none is
        repeated or lost; ``on_reconnect(error, sequence)`` is told each time.
        It gives up after ``max_reconnects`` attempts in a row without an
        event, or when ``timeout`` seconds have passed since the start.
        Breaking out of the loop ends the stream.
        """
        after = after_sequence
        deadline = None if timeout is None else time.monotonic() + timeout
        attempts = 0
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            # Once events have come, a lost server is waited for (it
            # restarts, the job resumes); before, an unreachable one fails.
            stream = self.trainer.WatchJob(
                trainer_pb2.WatchJobRequest(job_id=job_id, after_sequence=after), timeout=left, wait_for_ready=after > 0)
            try:
                for ev in stream:
                    attempts = 0
                    after = ev.sequence
                    yield ev
                    if ev.WhichOneof("event") == "state" and ev.state.state in _FINAL_STATES:
                        return
            except grpc.RpcError as err:
                typed = from_rpc_error(err)
                if not isinstance(typed, Unavailable) or after == 0 or attempts >= max_reconnects:
                    raise typed from err
                attempts += 1
                if on_reconnect is not None:
                    on_reconnect(typed, after)
                # At once the first time; then back off, for a server that
                # answers but keeps refusing (shutting down).
                time.sleep(min(attempts - 1, 5))
            else:
                raise Unknown(f"job {job_id}: the stream ended before the job did")
            finally:
                stream.cancel()

    def upload_dir(
        self,
        dataset: str,
        folder: str,
        *,
        split: Union[str, int, None] = None,
        test_fraction: float = 0.0,
        timeout: Optional[float] = None,
    ) -> upload.UploadResult:
        """Uploads a folder of images into a dataset, as `shoal dataset upload` does.

        The folder is laid out ``split/Label/file`` (``train/Bag/1.png``); or,
        with ``split`` ("train", "validation" or "test"), ``Label/file``, with
        ``test_fraction`` of the files (chosen by a hash of their path, so
        stable) moved to the test split. The folder is checked before anything
        is sent: one with no file in the layout raises InvalidArgument. Files
        go one message each on one stream, read as they are sent; the server
        validates and deduplicates them.

        Returns the server's counts (seen, added, duplicates, conflicts,
        rejected) and rejections (file and reason), and the files skipped as
        outside the layout.
        """
        scan = upload.scan_folder(folder, upload.parse_split(split), test_fraction)
        sender = _Recorded(upload.messages(dataset, scan.files))
        try:
            resp = self.dataset.UploadImages(iter(sender), timeout=timeout)
        except grpc.RpcError as err:
            if sender.error is not None:  # reading a file failed, which cancelled the stream
                raise sender.error from err
            raise from_rpc_error(err) from err
        return upload.UploadResult(counts=resp.counts, rejections=list(resp.rejections), skipped=scan.skipped)


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call, over TLS or not
    (gRPC's call credentials refuse plaintext channels)."""

    def __init__(self, token: str):
        self._header = ("authorization", "Bearer " + token)

    def _with_token(self, d: grpc.ClientCallDetails) -> _Details:
        metadata = list(d.metadata or []) + [self._header]
        return _Details(d.method, d.timeout, metadata, d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._with_token(details), request_iterator)


class _Recorded:
    """A request iterator that keeps the exception that ended it: gRPC reads
    requests on a thread of its own and reports only a cancelled call."""

    def __init__(self, it: Iterator):
        self._it = it
        self.error: Optional[BaseException] = None

    def __iter__(self):
        try:
            yield from self._it
        except Exception as err:
            self.error = err
            raise


def _loopback(address: str) -> bool:
    """Whether address (host:port, or a gRPC target such as dns:///host:port)
    is on this machine."""
    if address.startswith("unix:"):
        return True
    host = address
    for scheme in ("dns:///", "ipv4:", "ipv6:"):
        if host.startswith(scheme):
            host = host[len(scheme):]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: Optional[str]) -> Optional[bytes]:
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


def _image_bytes(image: Image) -> bytes:
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    with open(image, "rb") as f:
        return f.read()
