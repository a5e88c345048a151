"""What the live tests run against: a real `shoal serve` on free ports in a
temporary folder, a TCP proxy that can cut its connections, certificates from
openssl, and REST /predict over urllib.

The server binary is $SHOAL_BIN, else the repository's bin/shoal; ONNX Runtime
is $ONNXRUNTIME_SHARED_LIBRARY_PATH. scripts/test-python.sh sets both.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def shoal_binary() -> str:
    path = os.environ.get("SHOAL_BIN") or os.path.join(REPO, "bin", "shoal")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no shoal binary at {path}: build it (go build -o bin/shoal ./cmd/shoal) "
                           "or run scripts/test-python.sh")
    if not os.environ.get("ONNXRUNTIME_SHARED_LIBRARY_PATH"):
        raise RuntimeError("ONNXRUNTIME_SHARED_LIBRARY_PATH is not set: "
                           "export it from scripts/setup-onnxruntime.sh, or run scripts/test-python.sh")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`shoal serve` with auth on, run in its own folder (./data in it)."""

    def __init__(self, folder: str, *args: str):
        self.folder = folder
        self.grpc = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        os.makedirs(folder, exist_ok=True)
        self._log = open(os.path.join(folder, "serve.log"), "wb")
        self._proc = subprocess.Popen(
            [shoal_binary(), "serve", "--grpc.listen-address=" + self.grpc, "--http.listen-address=" + self.http,
             "--server.shutdown-delay=0", *args],
            cwd=folder, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(60)
        except BaseException:
            self.stop()
            raise
        with open(os.path.join(folder, "data", "admin-token")) as f:
            self.admin_token = f.read().strip()

    def _wait_ready(self, bound: float) -> None:
        # Readiness is a condition to poll; /readyz answers 200 once every
        # service is up.
        end = time.monotonic() + bound
        while time.monotonic() < end:
            if self._proc.poll() is not None:
                raise RuntimeError(f"shoal serve exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.http}/readyz", timeout=2):
                    return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.05)
        raise RuntimeError(f"shoal serve not ready within {bound}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        with open(os.path.join(self.folder, "serve.log"), errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def cli(self, *args: str, token: Optional[str] = None) -> str:
        """Runs a `shoal` client command against this server; returns its stdout."""
        env = dict(os.environ, SHOAL_ADDR=self.grpc, SHOAL_TOKEN=token or self.admin_token)
        out = subprocess.run([shoal_binary(), *args], cwd=self.folder, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"shoal {' '.join(args)}: exit {out.returncode}: {out.stderr}")
        return out.stdout

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def rest_predict(self, image: str, model: str, top_k: int) -> dict:
        """POST /predict with a multipart form, as the original API took it."""
        boundary = uuid.uuid4().hex
        with open(image, "rb") as f:
            data = f.read()
        body = b"".join([
            *(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
              for k, v in (("model", model), ("top_k", top_k))),
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{os.path.basename(image)}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode(), data, b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ])
        req = urllib.request.Request(f"http://{self.http}/predict", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)


class CuttingProxy:
    """A TCP proxy to a server whose cut() drops every connection through it,
    as a network failure or a load balancer's restart would."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._open: List[socket.socket] = []
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, upstream]
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._listener.close()
        self.cut()


def make_certificates(folder: str) -> dict:
    """A CA and one certificate it signs for 127.0.0.1, usable by the server
    and by clients (mutual TLS); returns the PEM files' paths."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("openssl is required (Debian: apt-get install openssl)")
    p = {k: os.path.join(folder, k) for k in ("ca.crt", "ca.key", "tls.crt", "tls.key", "tls.csr", "ext.cnf")}
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("req", "-x509", *key, "-keyout", p["ca.key"], "-out", p["ca.crt"], "-days", "1", "-subj", "/CN=shoal-test-ca",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *key, "-keyout", p["tls.key"], "-out", p["tls.csr"], "-subj", "/CN=shoal")
    with open(p["ext.cnf"], "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    run("x509", "-req", "-in", p["tls.csr"], "-CA", p["ca.crt"], "-CAkey", p["ca.key"], "-CAcreateserial",
        "-out", p["tls.crt"], "-days", "1", "-extfile", p["ext.cnf"])
    return p
