"""The fault proxy: it carries boto3's S3 and SQS traffic unharmed, and each fault looks to boto3
as the same failure from a real S3 would."""

from __future__ import annotations

import http.client
import os
import secrets
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from fault_proxy import FaultProxy, Kind, Op, Request, classify

from agent.lab import S3Server, free_port


def s3_client(endpoint_url: str, read_timeout: float = 10) -> Any:
    """A boto3 S3 client set up as the agent's store sets up its own: one attempt, short timeouts."""
    config = botocore.config.Config(
        retries={"total_max_attempts": 1},
        connect_timeout=2,
        read_timeout=read_timeout,
        max_pool_connections=32,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1", config=config)


@pytest.fixture
def client(fault_proxy: FaultProxy) -> Any:
    return s3_client(fault_proxy.endpoint_url)


@pytest.fixture
def direct(s3_server: S3Server) -> Any:
    """A client that bypasses the proxy, to see what reached the server."""
    return s3_client(s3_server.endpoint_url)


def keys(client: Any, bucket: str) -> list[str]:
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])]


def error_code(error: botocore.exceptions.ClientError) -> tuple[str, int]:
    return str(error.response["Error"]["Code"]), int(error.response["ResponseMetadata"]["HTTPStatusCode"])


def tcp_sockets() -> dict[str, tuple[int, int]]:
    """The TCP sockets this process holds open: inode -> (local port, remote port)."""
    ports = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        ports[fields[9]] = (int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16))
    held = {}
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        inode = target.removeprefix("socket:[").removesuffix("]")
        if target.startswith("socket:") and inode in ports:
            held[inode] = ports[inode]
    return held


# -- passing through --


def test_put_get_ranged_get_list_head_delete_pass_byte_for_byte(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    body = secrets.token_bytes(300_000)
    client.put_object(Bucket=bucket, Key="fd5e::b/01", Body=body)
    client.put_object(Bucket=bucket, Key="fd5e::b/02", Body=b"")

    assert client.get_object(Bucket=bucket, Key="fd5e::b/01")["Body"].read() == body
    assert direct.get_object(Bucket=bucket, Key="fd5e::b/01")["Body"].read() == body
    ranged = client.get_object(Bucket=bucket, Key="fd5e::b/01", Range="bytes=1000-1999")
    assert ranged["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert ranged["ContentRange"] == "bytes 1000-1999/300000"
    assert ranged["Body"].read() == body[1000:2000]
    assert client.get_object(Bucket=bucket, Key="fd5e::b/02")["Body"].read() == b""
    assert client.head_object(Bucket=bucket, Key="fd5e::b/01")["ContentLength"] == 300_000
    listing = client.list_objects_v2(Bucket=bucket, Prefix="fd5e::b/", MaxKeys=10)
    assert [(item["Key"], item["Size"]) for item in listing["Contents"]] == [("fd5e::b/01", 300_000), ("fd5e::b/02", 0)]
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket=bucket, Key="fd5e::b/03")

    deleted = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "fd5e::b/01"}, {"Key": "fd5e::b/02"}]})
    assert sorted(item["Key"] for item in deleted["Deleted"]) == ["fd5e::b/01", "fd5e::b/02"]
    assert keys(direct, bucket) == []

    assert [(r.operation, r.status, r.fault) for r in fault_proxy.records()] == [
        (Op.PUT_OBJECT, 200, None), (Op.PUT_OBJECT, 200, None),
        (Op.GET_OBJECT, 200, None), (Op.GET_OBJECT, 206, None), (Op.GET_OBJECT, 200, None),
        (Op.HEAD_OBJECT, 200, None), (Op.LIST_OBJECTS, 200, None), (Op.GET_OBJECT, 404, None),
        (Op.DELETE_OBJECTS, 200, None),
    ]


def test_keep_alive_one_connection_for_many_requests(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    for number in range(20):
        client.put_object(Bucket=bucket, Key=f"k/{number}", Body=b"x")
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)
    assert fault_proxy.count() == 40
    assert fault_proxy.accepted == 1


def test_many_concurrent_connections(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    def round_trip(worker: int) -> bool:
        bodies = {f"w{worker}/{n}": secrets.token_bytes(1000 + n) for n in range(8)}
        for key, body in bodies.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)
        return all(client.get_object(Bucket=bucket, Key=key)["Body"].read() == body for key, body in bodies.items())

    with ThreadPoolExecutor(16) as pool:
        assert all(pool.map(round_trip, range(16)))
    assert fault_proxy.count(Op.PUT_OBJECT) == fault_proxy.count(Op.GET_OBJECT) == 128
    assert 1 < fault_proxy.accepted <= 32  # the pool's connections, each kept alive


def test_sqs_passes_and_its_faults_speak_sqs(fault_proxy: FaultProxy, client: Any) -> None:
    sqs = boto3.client("sqs", endpoint_url=fault_proxy.endpoint_url, region_name="us-east-1",
                       config=botocore.config.Config(retries={"total_max_attempts": 1}))
    queue = sqs.create_queue(QueueName=f"q-{secrets.token_hex(4)}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="doorbell")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert [message["Body"] for message in messages] == ["doorbell"]

    fault_proxy.slowdown(ops=Op.SQS, count=1)
    fault_proxy.error500(ops=Op.SQS, count=1)
    with pytest.raises(botocore.exceptions.ClientError) as throttled:
        sqs.send_message(QueueUrl=queue, MessageBody="x")
    with pytest.raises(botocore.exceptions.ClientError) as failed:
        sqs.send_message(QueueUrl=queue, MessageBody="x")
    assert error_code(throttled.value) == ("RequestThrottled", 400)
    assert error_code(failed.value) == ("InternalFailure", 500)
    assert fault_proxy.count(Op.SQS) == 5
    assert fault_proxy.count(Op.SQS, fault=None) == 3


# -- faults --


def test_slowdown_is_503_slowdown_and_not_forwarded(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    fault_proxy.slowdown()
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.put_object(Bucket=bucket, Key="k/1", Body=b"x")
    assert error_code(error.value) == ("SlowDown", 503)
    assert error.value.response["Error"]["Message"] == "Please reduce your request rate."
    assert keys(direct, bucket) == []
    assert [(r.fault, r.status) for r in fault_proxy.records()] == [(Kind.SLOWDOWN, 503)]


def test_error500_is_internal_error_and_not_forwarded(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    direct.put_object(Bucket=bucket, Key="k/1", Body=b"x")
    fault_proxy.error500()
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k/1"}]})
    assert error_code(error.value) == ("InternalError", 500)
    assert keys(direct, bucket) == ["k/1"]


def test_reset_closes_the_connection_unanswered_and_the_pool_recovers(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    fault = fault_proxy.reset(count=1)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="k/1", Body=b"x")
    assert keys(direct, bucket) == []
    client.put_object(Bucket=bucket, Key="k/2", Body=b"y")
    assert keys(direct, bucket) == ["k/2"]
    assert fault.applied == 1
    assert [(r.fault, r.status) for r in fault_proxy.records()] == [(Kind.RESET, None), (None, 200)]


def test_reset_is_a_tcp_reset(fault_proxy: FaultProxy, bucket: str) -> None:
    fault_proxy.reset()
    with socket.create_connection(("127.0.0.1", int(fault_proxy.endpoint_url.rsplit(":", 1)[1]))) as raw:
        raw.sendall(f"GET /{bucket}/k HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        with pytest.raises(ConnectionResetError):
            raw.recv(100)


def test_stall_times_out_a_short_read_timeout_and_still_forwards(
    fault_proxy: FaultProxy, direct: Any, bucket: str
) -> None:
    impatient = s3_client(fault_proxy.endpoint_url, read_timeout=0.5)
    fault_proxy.stall(seconds=1.5, ops=Op.PUT_OBJECT, count=1)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        impatient.put_object(Bucket=bucket, Key="k/late", Body=b"x")
    # Like a slow S3, the proxy carries the request out after the wait, though nobody listens.
    assert fault_proxy.wait_for(1, Op.PUT_OBJECT, fault=Kind.STALL, timeout=10)
    assert keys(direct, bucket) == ["k/late"]
    assert fault_proxy.records(fault=Kind.STALL)[0].status == 200


def test_stall_shorter_than_the_timeout_delays_the_answer(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="k/1", Body=b"hello")
    fault_proxy.stall(seconds=0.3)
    started = time.monotonic()
    assert client.get_object(Bucket=bucket, Key="k/1")["Body"].read() == b"hello"
    assert time.monotonic() - started >= 0.3


def test_truncate_get_gives_a_body_shorter_than_its_content_length(
    fault_proxy: FaultProxy, client: Any, bucket: str
) -> None:
    body = secrets.token_bytes(10_000)
    client.put_object(Bucket=bucket, Key="k/1", Body=body)
    fault_proxy.truncate(fraction=0.25, ops=Op.GET_OBJECT)

    response = client.get_object(Bucket=bucket, Key="k/1")
    assert response["ContentLength"] == 10_000
    with pytest.raises(botocore.exceptions.ResponseStreamingError, match=r"IncompleteRead\(2500 bytes read"):
        response["Body"].read()

    # The same, seen below boto3: the declared length, then a quarter of the body, then the end.
    url = urllib.parse.urlsplit(client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k/1"}))
    connection = http.client.HTTPConnection(url.netloc)
    connection.request("GET", f"{url.path}?{url.query}")
    raw = connection.getresponse()
    assert raw.getheader("Content-Length") == "10000"
    with pytest.raises(http.client.IncompleteRead) as short:
        raw.read()
    assert short.value.partial == body[:2500]
    connection.close()


def test_truncate_list_and_put_fail_as_boto3_sees_a_cut_answer(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    fault_proxy.truncate(ops=Op.LIST_OBJECTS, count=1)
    with pytest.raises(botocore.exceptions.ClientError) as error:
        client.list_objects_v2(Bucket=bucket, MaxKeys=10)
    # botocore turns a 200 whose XML body is cut short into a 500, as for any broken S3 answer.
    assert error_code(error.value) == ("500", 500)

    # A PUT's answer has no body: the status line is cut, and the PUT itself went through.
    fault_proxy.truncate(ops=Op.PUT_OBJECT, count=1)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.put_object(Bucket=bucket, Key="k/1", Body=b"x")
    assert keys(direct, bucket) == ["k/1"]
    assert [(r.operation, r.fault, r.status) for r in fault_proxy.records()] == [
        (Op.LIST_OBJECTS, Kind.TRUNCATE, 200), (Op.PUT_OBJECT, Kind.TRUNCATE, 200),
    ]


def test_outage_refuses_everything_until_cleared(
    fault_proxy: FaultProxy, client: Any, direct: Any, bucket: str
) -> None:
    client.put_object(Bucket=bucket, Key="k/1", Body=b"x")
    fault_proxy.slowdown(ops=Op.GET_OBJECT)
    fault_proxy.outage()
    fresh = s3_client(fault_proxy.endpoint_url)  # a new connection fares no better than a kept one
    calls = [
        lambda: client.put_object(Bucket=bucket, Key="k/2", Body=b"y"),
        lambda: client.get_object(Bucket=bucket, Key="k/1"),  # the outage comes before any other fault
        lambda: client.list_objects_v2(Bucket=bucket, MaxKeys=10),
        lambda: client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "k/1"}]}),
        lambda: fresh.head_bucket(Bucket=bucket),
    ]
    for call in calls:
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            call()
    assert keys(direct, bucket) == ["k/1"]
    assert fault_proxy.count(fault=Kind.OUTAGE) == 5

    fault_proxy.clear()
    client.put_object(Bucket=bucket, Key="k/2", Body=b"y")
    assert client.get_object(Bucket=bucket, Key="k/1")["Body"].read() == b"x"
    fresh.head_bucket(Bucket=bucket)
    assert keys(direct, bucket) == ["k/1", "k/2"]


def test_upstream_down_looks_like_an_unreachable_server(bucket: str) -> None:
    with FaultProxy(f"http://127.0.0.1:{free_port()}") as proxy:
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            s3_client(proxy.endpoint_url).head_bucket(Bucket=bucket)
        assert [(r.operation, r.fault, r.status) for r in proxy.records()] == [(Op.HEAD_BUCKET, None, None)]


# -- filters, counts and chance --


def test_filters_by_operation_method_and_predicate(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    client.put_object(Bucket=bucket, Key="a/1", Body=b"x")
    client.put_object(Bucket=bucket, Key="b/1", Body=b"x")

    fault_proxy.slowdown(ops=[Op.PUT_OBJECT, Op.DELETE_OBJECTS])
    with pytest.raises(botocore.exceptions.ClientError):
        client.put_object(Bucket=bucket, Key="a/2", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError):
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a/1"}]})
    assert client.get_object(Bucket=bucket, Key="a/1")["Body"].read() == b"x"
    fault_proxy.clear()

    fault_proxy.error500(method="head")
    with pytest.raises(botocore.exceptions.ClientError):
        client.head_object(Bucket=bucket, Key="a/1")
    assert keys(client, bucket) == ["a/1", "b/1"]
    fault_proxy.clear()

    def under_b(request: Request) -> bool:
        return request.path.startswith(f"/{bucket}/b/") or request.params.get("prefix") == ["b/"]

    fault_proxy.reset(where=under_b)
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.get_object(Bucket=bucket, Key="b/1")
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        client.list_objects_v2(Bucket=bucket, Prefix="b/", MaxKeys=10)
    assert client.list_objects_v2(Bucket=bucket, Prefix="a/", MaxKeys=10)["KeyCount"] == 1
    assert client.get_object(Bucket=bucket, Key="a/1")["Body"].read() == b"x"


def test_next_n_requests_then_the_fault_is_gone(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    fault = fault_proxy.slowdown(ops=Op.PUT_OBJECT, count=3)
    outcomes = []
    for number in range(6):
        client.list_objects_v2(Bucket=bucket, MaxKeys=1)  # not a PUT: neither faulted nor counted down
        try:
            client.put_object(Bucket=bucket, Key=f"k/{number}", Body=b"x")
            outcomes.append("ok")
        except botocore.exceptions.ClientError as error:
            outcomes.append(error_code(error)[0])
    assert outcomes == ["SlowDown"] * 3 + ["ok"] * 3
    assert (fault.applied, fault.remaining) == (3, 0)
    assert keys(client, bucket) == ["k/3", "k/4", "k/5"]


def test_probability_takes_a_share_and_the_first_fault_wins(s3_server: S3Server, bucket: str) -> None:
    with FaultProxy(s3_server.endpoint_url, seed=7) as proxy:
        client = s3_client(proxy.endpoint_url)
        half = proxy.error500(ops=Op.HEAD_BUCKET, probability=0.5)
        rest = proxy.slowdown(ops=Op.HEAD_BUCKET)
        codes = []
        for _ in range(100):
            try:
                client.head_bucket(Bucket=bucket)
            except botocore.exceptions.ClientError as error:
                codes.append(error_code(error)[1])
        assert codes.count(500) == half.applied == proxy.count(fault=Kind.ERROR500)
        assert codes.count(503) == rest.applied == 100 - half.applied
        assert 25 <= half.applied <= 75


def test_counts_windows_rates_and_the_accounting_identity(fault_proxy: FaultProxy, client: Any, bucket: str) -> None:
    before = time.monotonic()
    for number in range(5):
        client.put_object(Bucket=bucket, Key=f"k/{number}", Body=b"x")
    middle = time.monotonic()
    fault_proxy.slowdown(ops=Op.GET_OBJECT, count=2)
    attempts = failures = 0
    for number in range(5):
        attempts += 1
        try:
            client.get_object(Bucket=bucket, Key=f"k/{number}")["Body"].read()
        except botocore.exceptions.ClientError:
            failures += 1
    client.list_objects_v2(Bucket=bucket, MaxKeys=10)
    after = time.monotonic()

    assert fault_proxy.count() == 11
    assert fault_proxy.counts() == {Op.PUT_OBJECT: 5, Op.GET_OBJECT: 5, Op.LIST_OBJECTS: 1}
    assert fault_proxy.counts(since=middle) == {Op.GET_OBJECT: 5, Op.LIST_OBJECTS: 1}
    assert fault_proxy.count(Op.PUT_OBJECT, until=middle) == 5
    assert fault_proxy.count(Op.PUT_OBJECT, since=middle) == 0
    # Every attempt the client made is one request the proxy saw: answered, or faulted.
    assert attempts == fault_proxy.count(Op.GET_OBJECT) == 5
    assert failures == fault_proxy.count(Op.GET_OBJECT, fault="slowdown") == 2
    assert fault_proxy.count(Op.GET_OBJECT, fault=None) == attempts - failures
    assert [r.status for r in fault_proxy.records(Op.GET_OBJECT)] == [503, 503, 200, 200, 200]
    assert fault_proxy.rate(Op.PUT_OBJECT, since=before, until=after) == pytest.approx(5 / (after - before))
    assert fault_proxy.rate(since=middle, until=after) == pytest.approx(6 / (after - middle))
    with pytest.raises(ValueError, match="window"):
        fault_proxy.rate(since=after, until=before)

    fault_proxy.forget()
    assert fault_proxy.count() == 0


def test_bad_settings_are_refused_clearly(fault_proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="probability"):
        fault_proxy.slowdown(probability=1.5)
    with pytest.raises(ValueError, match="count"):
        fault_proxy.reset(count=0)
    with pytest.raises(ValueError, match="fraction"):
        fault_proxy.truncate(fraction=1.0)
    with pytest.raises(ValueError, match="not-an-op"):
        fault_proxy.reset(ops="not-an-op")
    with pytest.raises(ValueError, match="http://"):
        FaultProxy("https://s3.example")


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("GET", "/b/fd5e::a/01", "", {}, Op.GET_OBJECT),
        ("GET", "/b/fd5e::a/01", "x-id=GetObject", {}, Op.GET_OBJECT),
        ("GET", "/b/k", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00", {}, Op.GET_OBJECT),
        ("GET", "/b/k", "AWSAccessKeyId=AK&Signature=00&Expires=1", {}, Op.GET_OBJECT),
        ("GET", "/b/k", "tagging", {}, Op.OTHER),
        ("PUT", "/b/fd5e::a/01", "", {}, Op.PUT_OBJECT),
        ("HEAD", "/b/k", "", {}, Op.HEAD_OBJECT),
        ("DELETE", "/b/k", "", {}, Op.DELETE_OBJECT),
        ("GET", "/b", "list-type=2&prefix=fd5e%3A%3Aa%2F&max-keys=100", {}, Op.LIST_OBJECTS),
        ("GET", "/b", "", {}, Op.LIST_OBJECTS),
        ("POST", "/b", "delete", {}, Op.DELETE_OBJECTS),
        ("HEAD", "/b", "", {}, Op.HEAD_BUCKET),
        ("PUT", "/b", "", {}, Op.CREATE_BUCKET),
        ("PUT", "/b", "lifecycle", {}, Op.OTHER),
        ("GET", "/", "", {}, Op.LIST_BUCKETS),
        ("POST", "/b/k", "uploads", {}, Op.OTHER),
        ("POST", "/", "", {"x-amz-target": "AmazonSQS.ReceiveMessage"}, Op.SQS),
        ("POST", "/", "", {"authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sqs/aws4_request, "
                                            "SignedHeaders=host, Signature=00"}, Op.SQS),
    ],
)
def test_classify(method: str, path: str, query: str, headers: dict[str, str], operation: Op) -> None:
    assert classify(method, path, query, headers) is operation


# -- stopping --


def test_stop_closes_every_connection_and_joins_every_thread(s3_server: S3Server, bucket: str) -> None:
    threads_before = set(threading.enumerate())
    upstream_before = {inode for inode, (_, remote) in tcp_sockets().items() if remote == s3_server.port}
    proxy = FaultProxy(s3_server.endpoint_url).start()
    port = int(proxy.endpoint_url.rsplit(":", 1)[1])
    client = s3_client(proxy.endpoint_url, read_timeout=60)
    with ThreadPoolExecutor(8) as pool:  # several kept-alive connections, idle now
        list(pool.map(lambda n: client.put_object(Bucket=bucket, Key=f"k/{n}", Body=b"x"), range(32)))
    stall = proxy.stall(seconds=60)
    outcome: list[BaseException] = []

    def stalled_request() -> None:
        try:
            client.head_bucket(Bucket=bucket)
        except Exception as error:
            outcome.append(error)

    stalled = threading.Thread(target=stalled_request)
    stalled.start()
    deadline = time.monotonic() + 10
    while stall.applied == 0 and time.monotonic() < deadline:  # until it waits inside the stall
        time.sleep(0.01)
    assert stall.applied == 1

    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 30  # the stall did not hold stop() up
    stalled.join(10)
    assert not stalled.is_alive()
    assert [type(error) for error in outcome] == [botocore.exceptions.ConnectionClosedError]
    assert set(threading.enumerate()) == threads_before
    held = tcp_sockets()
    assert [ports for ports in held.values() if ports[0] == port] == []  # the listener and its connections
    assert {inode for inode, (_, remote) in held.items() if remote == s3_server.port} <= upstream_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    assert proxy.records(Op.HEAD_BUCKET)[0].status is None
    proxy.stop()  # a second stop does nothing
