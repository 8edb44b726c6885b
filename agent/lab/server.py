"""moto's S3 API server as a process of its own on 127.0.0.1, and the helpers to start and stop it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

import boto3

LOOPBACK = "127.0.0.1"
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
