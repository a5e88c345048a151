"""What the SDK decides without a server: error types, the transport, folder layouts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc

import shoal_client
from shoal_client import upload


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str):
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class ErrorsTest(unittest.TestCase):
    def test_each_code_has_its_type(self) -> None:
        for code, cls in [
            (grpc.StatusCode.NOT_FOUND, shoal_client.NotFound),
            (grpc.StatusCode.PERMISSION_DENIED, shoal_client.PermissionDenied),
            (grpc.StatusCode.UNAUTHENTICATED, shoal_client.Unauthenticated),
            (grpc.StatusCode.INVALID_ARGUMENT, shoal_client.InvalidArgument),
            (grpc.StatusCode.UNAVAILABLE, shoal_client.Unavailable),
            (grpc.StatusCode.RESOURCE_EXHAUSTED, shoal_client.ResourceExhausted),
            (grpc.StatusCode.FAILED_PRECONDITION, shoal_client.FailedPrecondition),
        ]:
            err = shoal_client.from_rpc_error(_Failed(code, "why"))
            self.assertIs(type(err), cls, code)
            self.assertIsInstance(err, grpc.RpcError)  # code catching grpc.RpcError still catches it
            self.assertEqual((err.code(), err.details(), str(err)), (code, "why", f"{code.name}: why"))

    def test_translate_errors(self) -> None:
        with self.assertRaises(shoal_client.NotFound) as ctx:
            with shoal_client.translate_errors():
                raise _Failed(grpc.StatusCode.NOT_FOUND, "model nope")
        self.assertIsInstance(ctx.exception.__cause__, _Failed)


class TransportTest(unittest.TestCase):
    def test_plaintext_only_on_this_machine(self) -> None:
        for address, tls in [("localhost:9090", False), ("127.0.0.1:9090", False), ("[::1]:9090", False),
                             ("shoal.example.com:443", True), ("10.0.0.7:9090", True)]:
            with shoal_client.Client(address) as c:
                self.assertEqual(c.tls, tls, address)
        with shoal_client.Client("shoal.example.com:9090", tls=False) as c:
            self.assertFalse(c.tls)

    def test_certificate_files(self) -> None:
        with tempfile.NamedTemporaryFile() as pem:
            with shoal_client.Client("localhost:9090", ca_file=pem.name) as c:
                self.assertTrue(c.tls)
            with self.assertRaises(ValueError):
                shoal_client.Client("localhost:9090", cert_file=pem.name)  # without its key
            with self.assertRaises(ValueError):
                shoal_client.Client("localhost:9090", tls=False, ca_file=pem.name)


class LayoutTest(unittest.TestCase):
    def folder(self, *files: str) -> str:
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root)
        for f in files:
            os.makedirs(os.path.dirname(os.path.join(root, f)), exist_ok=True)
            with open(os.path.join(root, f), "wb") as fh:
                fh.write(b"x")
        return root

    def test_split_layout(self) -> None:
        root = self.folder("train/Cat/1.jpg", "test/Dog/2.jpg", "README", ".git/x/y/z", "train/Cat/.DS_Store",
                           "train/loose.jpg", "extra/Cat/3.jpg", "train/Cat/deep/4.jpg")
        scan = upload.scan_folder(root)
        self.assertEqual([(f.split, f.label, f.name) for f in scan.files],
                         [(shoal_client.pb.dataset.SPLIT_TEST, "Dog", "2.jpg"),
                          (shoal_client.pb.dataset.SPLIT_TRAIN, "Cat", "1.jpg")])
        self.assertEqual(sorted(scan.skipped), ["extra/Cat/3.jpg", "train/Cat/deep/4.jpg", "train/loose.jpg"])

    def test_label_layout_needs_a_split(self) -> None:
        root = self.folder("Cat/1.jpg", "Dog/2.jpg")
        with self.assertRaisesRegex(shoal_client.InvalidArgument, "give split"):
            upload.scan_folder(root)
        scan = upload.scan_folder(root, upload.parse_split("validation"))
        self.assertEqual({f.split for f in scan.files}, {shoal_client.pb.dataset.SPLIT_VALIDATION})
        for split, fraction in (("", 0.2), ("test", 0.2), ("train", 1.0), ("train", float("nan"))):
            with self.assertRaises(shoal_client.InvalidArgument):
                upload.scan_folder(root, upload.parse_split(split), fraction)
        with self.assertRaises(shoal_client.InvalidArgument):
            upload.parse_split("dev")

    def test_path_share_is_stable_and_uniform(self) -> None:
        shares = [upload.path_share(f"Cat/{i}.jpg") for i in range(1000)]
        self.assertEqual(shares, [upload.path_share(f"Cat/{i}.jpg") for i in range(1000)])
        self.assertTrue(all(0 <= s < 1 for s in shares))
        self.assertAlmostEqual(sum(s < 0.3 for s in shares) / 1000, 0.3, delta=0.05)


class GoogleApiTest(unittest.TestCase):
    def test_googleapis_common_protos_is_preferred(self) -> None:
        """With another google/api/http.proto in the descriptor pool, as
        googleapis-common-protos puts there (protoc's own output, without
        json names, so not byte-equal to the copy in shoal_client.gen), the
        stubs use it instead of loading a second, refused one; the same for
        buf/validate/validate.proto and the protovalidate package."""
        repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
        protos = os.path.join(repo, ".build", "protodeps")
        if not os.path.isfile(os.path.join(protos, "google", "api", "http.proto")):
            self.fail(f"no google/api protos in {protos}: run scripts/protodeps.sh (scripts/test-python.sh does)")
        site = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, site)
        subprocess.run(["protoc", "-I", protos, "--python_out", site, "google/api/http.proto",
                        "google/api/annotations.proto", "google/api/httpbody.proto",
                        "google/api/field_behavior.proto", "buf/validate/validate.proto"], check=True)
        src = os.path.join(repo, "clients", "python", "src")
        # buf/validate as the protovalidate package puts it there.
        code = ("import sys, google.api.annotations_pb2, buf.validate.validate_pb2, shoal_client\n"
                "assert shoal_client._googleapi.http_pb2.__name__ == 'google.api.http_pb2'\n"
                "assert 'shoal_client.gen.google.api.http_pb2' not in sys.modules\n"
                "assert shoal_client._bufvalidate.validate_pb2.__name__ == 'buf.validate.validate_pb2'\n"
                "assert 'shoal_client.gen.buf.validate.validate_pb2' not in sys.modules\n"
                "shoal_client.pb.trainer.JobSpec(dataset='x')\n")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([site, src]))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)


if __name__ == "__main__":
    unittest.main()
