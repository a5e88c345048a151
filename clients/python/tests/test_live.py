"""The SDK against a live `shoal serve` with auth on: folder uploads, a
training job followed through a cut connection, predictions compared with
REST /predict, typed errors, TLS, and the example script.

One server serves the whole module; scripts/test-python.sh runs it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import harness

import shoal_client
from shoal_client import pb

SERVER: harness.Server
TMP = ""
DEMO = ""  # the Fashion-MNIST demo tree, split/Label/file


def setUpModule() -> None:
    global SERVER, TMP, DEMO
    TMP = tempfile.mkdtemp(prefix="shoal-pysdk-")
    SERVER = harness.Server(os.path.join(TMP, "server"))
    DEMO = os.path.join(TMP, "demo")
    SERVER.cli("demo-data", "--out", DEMO)


def tearDownModule() -> None:
    SERVER.stop()
    shutil.rmtree(TMP, ignore_errors=True)


def admin(address: str = "") -> shoal_client.Client:
    return shoal_client.Client(address or SERVER.grpc, SERVER.admin_token)


def demo_images(split: str, per_label: int) -> dict:
    """The first images of each label of a demo split: {label: [paths]}."""
    return {os.path.basename(d): sorted(glob.glob(os.path.join(d, "*.png")))[:per_label]
            for d in sorted(glob.glob(os.path.join(DEMO, split, "*")))}


def final_state(events) -> int:
    last = events[-1]
    return last.state.state if last.WhichOneof("event") == "state" else pb.trainer.JOB_STATE_UNSPECIFIED


def as_float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


class UploadDirTest(unittest.TestCase):
    def setUp(self) -> None:
        self.client = admin()
        self.addCleanup(self.client.close)
        self.folder = tempfile.mkdtemp(dir=TMP)

    def create(self, name: str) -> None:
        self.client.dataset.CreateDataset(pb.dataset.CreateDatasetRequest(name=name))

    def test_split_layout_counts_rejects_and_skips(self) -> None:
        files = 0
        for label, paths in demo_images("train", 3).items():
            os.makedirs(os.path.join(self.folder, "train", label))
            for p in paths:
                shutil.copy(p, os.path.join(self.folder, "train", label))
                files += 1
        with open(os.path.join(self.folder, "train", "Bag", "broken.png"), "wb") as f:
            f.write(b"not an image")
        for name, data in (("README.md", b"top-level: ignored"), ("train/.DS_Store", b"hidden: ignored"),
                           ("train/notes.txt", b"outside the layout: skipped")):
            with open(os.path.join(self.folder, name), "wb") as f:
                f.write(data)
        self.create("up-split")

        got = self.client.upload_dir("up-split", self.folder)
        self.assertEqual((got.counts.seen, got.counts.added, got.counts.rejected), (files + 1, files, 1), got.counts)
        self.assertEqual([r.path for r in got.rejections], ["train/Bag/broken.png"])
        self.assertEqual(got.skipped, ["train/notes.txt"])

        again = self.client.upload_dir("up-split", self.folder)  # nothing stored twice
        self.assertEqual((again.counts.added, again.counts.duplicates), (0, files), again.counts)
        stats = self.client.dataset.GetDatasetStats(pb.dataset.GetDatasetStatsRequest(dataset="up-split"))
        self.assertEqual(stats.image_count, files)

    def test_label_layout_places_files_as_the_cli_does(self) -> None:
        for label, paths in demo_images("train", 8).items():
            os.makedirs(os.path.join(self.folder, label))
            for p in paths:
                shutil.copy(p, os.path.join(self.folder, label))
        self.create("up-sdk")
        self.create("up-cli")

        self.client.upload_dir("up-sdk", self.folder, split="train", test_fraction=0.3)
        SERVER.cli("dataset", "upload", "up-cli", self.folder, "--split", "train", "--test-fraction", "0.3")

        def placed(dataset):
            resp = self.client.dataset.ListImages(pb.dataset.ListImagesRequest(dataset=dataset, page_size=1000))
            return sorted((i.split, i.label, i.file_name) for i in resp.images)

        sdk = placed("up-sdk")
        self.assertEqual(sdk, placed("up-cli"))
        self.assertEqual({s for s, _, _ in sdk}, {pb.dataset.SPLIT_TRAIN, pb.dataset.SPLIT_TEST})

    def test_wrong_layout_is_refused_before_sending(self) -> None:
        os.makedirs(os.path.join(self.folder, "Bag"))
        shutil.copy(demo_images("train", 1)["Bag"][0], os.path.join(self.folder, "Bag"))
        self.create("up-wrong")
        with self.assertRaisesRegex(shoal_client.InvalidArgument, "laid out split/Label/file"):
            self.client.upload_dir("up-wrong", self.folder)
        stats = self.client.dataset.GetDatasetStats(pb.dataset.GetDatasetStatsRequest(dataset="up-wrong"))
        self.assertEqual(stats.image_count, 0)

    def test_a_file_that_cannot_be_read_fails_with_its_own_error(self) -> None:
        bag = os.path.join(self.folder, "train", "Bag")
        os.makedirs(bag)
        for p in demo_images("train", 2)["Bag"]:
            shutil.copy(p, bag)
        # A socket is listed like a file but cannot be opened: read while
        # gRPC streams, after two images went, it ends the stream.
        sock = socket.socket(socket.AF_UNIX)
        self.addCleanup(sock.close)
        sock.bind(os.path.join(bag, "zz.sock"))
        self.create("up-unreadable")
        with self.assertRaises(OSError) as ctx:
            self.client.upload_dir("up-unreadable", self.folder)
        self.assertIn("zz.sock", str(ctx.exception))

    def test_unknown_dataset(self) -> None:
        with self.assertRaises(shoal_client.NotFound):
            self.client.upload_dir("no-such-dataset", DEMO)


class TrainedModelTest(unittest.TestCase):
    """Predictions and errors against a model trained here on the demo dataset."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = admin()
        cls.client.dataset.CreateDataset(pb.dataset.CreateDatasetRequest(name="fashion"))
        cls.client.upload_dir("fashion", DEMO)
        spec = pb.trainer.JobSpec(dataset="fashion", epochs=3, seed=1, promotion=pb.trainer.PROMOTION_POLICY_ALWAYS)
        job = cls.client.trainer.StartTraining(pb.trainer.StartTrainingRequest(spec=spec)).job
        events = list(cls.client.watch_job(job.id, timeout=300))
        if final_state(events) != pb.trainer.JOB_STATE_SUCCEEDED:
            raise AssertionError(f"training ended {events[-1]}")
        cls.job_id = job.id
        cls.images = [paths[0] for paths in demo_images("test", 1).values()]
        # Inference loads a promoted version on its own; wait until it serves.
        end = time.monotonic() + 60
        while True:
            try:
                cls.client.predict(cls.images[0], model="fashion")
                break
            except (shoal_client.NotFound, shoal_client.Unavailable):
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.client.close()

    def test_predict_equals_rest(self) -> None:
        resp = self.client.predict(self.images, model="fashion", top_k=5)
        self.assertEqual((resp.model, resp.version, len(resp.results)), ("fashion", 1, len(self.images)))
        for path, result in zip(self.images, resp.results):
            rest = SERVER.rest_predict(path, "fashion", 5)
            self.assertEqual(rest["version"], resp.version)
            self.assertEqual([(l.label, l.probability) for l in result.labels],
                             [(l["label"], as_float32(l["probability"])) for l in rest["top_k"]], path)
        # The bytes of an image answer as its path does.
        with open(self.images[0], "rb") as f:
            self.assertEqual(self.client.predict(f.read(), model="fashion", top_k=5).results[0], resp.results[0])

    def test_anonymous_predicts_but_reads_nothing(self) -> None:
        with shoal_client.Client(SERVER.grpc, token="") as anon:
            self.assertEqual(anon.predict(self.images[0], model="fashion").model, "fashion")
            with self.assertRaises(shoal_client.Unauthenticated):
                with shoal_client.translate_errors():
                    anon.registry.ListModels(pb.registry.ListModelsRequest())
            with self.assertRaises(shoal_client.Unauthenticated):
                list(anon.watch_job(self.job_id))
        with shoal_client.Client(SERVER.grpc, token="not-a-token") as bad:
            with self.assertRaises(shoal_client.Unauthenticated):
                bad.predict(self.images[0], model="fashion")

    def test_missing_scope_is_permission_denied(self) -> None:
        made = self.client.auth.CreateToken(pb.auth.CreateTokenRequest(
            name="py-reader", scopes=[pb.auth_options.SCOPE_PREDICT, pb.auth_options.SCOPE_READ]))
        with shoal_client.Client(SERVER.grpc, made.secret) as reader:
            self.assertTrue(list(reader.watch_job(self.job_id)))
            with self.assertRaises(shoal_client.PermissionDenied):
                reader.upload_dir("fashion", DEMO)

    def test_not_found_and_invalid_argument(self) -> None:
        with self.assertRaisesRegex(shoal_client.NotFound, "nope"):
            self.client.predict(self.images[0], model="nope")
        with self.assertRaises(shoal_client.NotFound):
            list(self.client.watch_job(str(uuid.uuid4())))
        with self.assertRaises(shoal_client.NotFound) as ctx:
            with shoal_client.translate_errors():
                self.client.registry.GetVersion(pb.registry.GetVersionRequest(model="fashion", version=99))
        self.assertIsInstance(ctx.exception, shoal_client.ShoalError)
        with self.assertRaises(shoal_client.InvalidArgument):
            self.client.predict(b"not an image", model="fashion")

    def test_raw_stubs_reach_the_open_inference_protocol(self) -> None:
        self.assertTrue(self.client.oip.ServerLive(pb.oip.ServerLiveRequest()).live)
        self.assertTrue(self.client.oip.ModelReady(pb.oip.ModelReadyRequest(name="fashion")).ready)

    def test_example_script(self) -> None:
        script = os.path.join(os.path.dirname(__file__), "..", "examples", "quickstart.py")
        env = dict(os.environ, SHOAL_ADDR=SERVER.grpc, SHOAL_TOKEN=SERVER.admin_token)
        out = subprocess.run([sys.executable, script, "fashion", *self.images[:2]], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        for path in self.images[:2]:
            label = os.path.basename(os.path.dirname(path))
            self.assertIn(f"{path}: {label} ", "\n".join(lines))
        self.assertIn("answered by fashion v1", lines)
        self.assertTrue(any(l.startswith("fashion v1: small-cnn, test accuracy ") for l in lines), out.stdout)
        self.assertIn("job SUCCEEDED", "\n".join(lines))


class WatchJobTest(unittest.TestCase):
    def test_follows_a_job_through_a_cut_connection(self) -> None:
        client = admin()
        self.addCleanup(client.close)
        client.dataset.CreateDataset(pb.dataset.CreateDatasetRequest(name="watched"))
        client.upload_dir("watched", DEMO)
        proxy = harness.CuttingProxy(SERVER.grpc)
        self.addCleanup(proxy.close)
        via_proxy = admin(proxy.address)
        self.addCleanup(via_proxy.close)

        spec = pb.trainer.JobSpec(dataset="watched", epochs=6, seed=2, promotion=pb.trainer.PROMOTION_POLICY_NEVER)
        job = client.trainer.StartTraining(pb.trainer.StartTrainingRequest(spec=spec)).job
        reconnects = []
        got = []
        for ev in via_proxy.watch_job(job.id, timeout=300, on_reconnect=lambda err, seq: reconnects.append((err, seq))):
            got.append(ev)
            # Cut after the first epoch, mid-training (five epochs to come),
            # and after the last, where the events next (evaluation, export,
            # the final state) are all kept in the history, so one skipped
            # on resuming would show below.
            if ev.WhichOneof("event") == "epoch" and ev.epoch.epoch in (1, 6):
                proxy.cut()

        self.assertEqual([type(err) for err, _ in reconnects], [shoal_client.Unavailable] * 2, reconnects)
        self.assertEqual(proxy.connections, 3)
        self.assertEqual(final_state(got), pb.trainer.JOB_STATE_SUCCEEDED)
        seqs = [ev.sequence for ev in got]
        self.assertEqual(seqs, sorted(set(seqs)), "sequences repeat or go back")
        self.assertGreater(seqs[-1], reconnects[-1][1], "no event after the last reconnection")

        # Nothing lost: the job's stored history, replayed now, is what the
        # cut watch saw (progress excepted: only its latest is kept).
        def lasting(events):
            return [ev for ev in events if ev.WhichOneof("event") != "progress"]

        replay = list(client.watch_job(job.id))
        self.assertEqual(lasting(got), lasting(replay))
        self.assertEqual([e.epoch.epoch for e in lasting(got) if e.WhichOneof("event") == "epoch"], list(range(1, 7)))


class TLSTest(unittest.TestCase):
    """A server speaking mutual TLS: the client's CA file and certificate."""

    @classmethod
    def setUpClass(cls) -> None:
        certs = harness.make_certificates(tempfile.mkdtemp(dir=TMP))
        cls.certs = certs
        cls.server = harness.Server(
            os.path.join(TMP, "tls-server"),
            "--grpc.tls-cert-file=" + certs["tls.crt"], "--grpc.tls-key-file=" + certs["tls.key"],
            "--grpc.tls-client-ca-file=" + certs["ca.crt"],
            # The gateway and the services in this process dial the gRPC
            # port too, so they need a client certificate as well.
            "--clients.tls-ca-file=" + certs["ca.crt"], "--clients.tls-cert-file=" + certs["tls.crt"],
            "--clients.tls-key-file=" + certs["tls.key"])

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def test_mutual_tls(self) -> None:
        c = self.certs
        with shoal_client.Client(self.server.grpc, self.server.admin_token, ca_file=c["ca.crt"],
                                 cert_file=c["tls.crt"], key_file=c["tls.key"]) as client:
            self.assertTrue(client.tls)
            with shoal_client.translate_errors():
                self.assertEqual(list(client.registry.ListModels(pb.registry.ListModelsRequest(), timeout=30).models), [])
        for kwargs in ({"ca_file": c["ca.crt"]}, {"tls": False}):  # no client certificate; plaintext
            with shoal_client.Client(self.server.grpc, self.server.admin_token, **kwargs) as client:
                with self.assertRaises(shoal_client.Unavailable, msg=str(kwargs)):
                    with shoal_client.translate_errors():
                        client.registry.ListModels(pb.registry.ListModelsRequest(), timeout=10)


if __name__ == "__main__":
    unittest.main()
