"""Each S3 client behind the transport seam, against the real local S3 server: the same answers,
one request per call, the same failures named the same way."""

from __future__ import annotations

import contextlib

import pytest
from fault_proxy import Kind, Op

from agent.lab import free_port
from agent.metrics import Stats
from agent.transport import S3_CLIENTS, Guard, StoreError, open_bucket, raw_bucket
from agent.transport.guard import classify
from agent.transport.obstore_s3 import BotoCredentials, nameable

CLIENTS = sorted(S3_CLIENTS)
HOSTILE_KEYS = ["in/trailing/", "in/..", "in/.", "in/a//b", "in/control\x01", "in/sp ace%#?*[]~é"]
"""Keys S3 takes and object_store cannot name as they are (the last one it can)."""

pytestmark = pytest.mark.engines
"""The end-to-end core: CI runs it on every S3 engine (Makefile)."""


@pytest.fixture(params=CLIENTS)
def s3_client(request) -> str:
    return str(request.param)


def test_every_client_supports_what_the_loops_need():
    from agent.config import S3_CLIENTS as NAMES
    from agent.transport import NEEDED

    assert set(NAMES) == set(S3_CLIENTS)
    for name, client in S3_CLIENTS.items():
        assert client.supports >= NEEDED, name
    with pytest.raises(ValueError, match="choose one of boto3, obstore"):
        raw_bucket("b", s3_client="curl")


def test_a_bucket_whose_connections_must_be_marked_goes_through_a_client_that_marks_them(s3_server, bucket):
    """An exit node's own requests carry a firewall mark; obstore cannot set one, so boto3 sends them."""
    from agent.transport import S3Bucket

    marked = raw_bucket(bucket, s3_server.endpoint_url, "us-east-1", "obstore", mark=0x4853)
    assert isinstance(marked, S3Bucket)
    assert "socket_mark" not in S3_CLIENTS["obstore"].supports and "socket_mark" in S3_CLIENTS["boto3"].supports
    assert type(raw_bucket(bucket, s3_server.endpoint_url, "us-east-1", "obstore")).__name__ == "ObstoreBucket"


def test_put_get_list_delete_agree(s3_server, bucket, s3_client):
    import obstore

    store = open_bucket(bucket, s3_server.endpoint_url, "us-east-1", s3_client=s3_client)
    for n in range(1, 5):
        store.put(f"in/{n}", bytes([n]) * (n * 10))
    # (boto3's PUT of an empty body waits for ever on the lab's server)
    obstore.put(raw_bucket(bucket, s3_server.endpoint_url, "us-east-1", "obstore").store, "in/0", b"")  # type: ignore[attr-defined]
    assert store.get("in/3") == b"\x03" * 30
    assert store.get("in/4", limit=7) == b"\x04" * 8  # a ranged read: one byte past the limit, no more
    assert store.get("in/0") == b""  # empty: the range has no first byte
    assert store.get("in/missing") is None
    page = store.list_objects("in/", max_keys=2, start_after="in/0")
    assert [item.key for item in page] == ["in/1", "in/2"] and page.truncated and page.next_token
    assert [item.size for item in page] == [10, 20]
    rest = store.list_objects("in/", max_keys=2, token=page.next_token)
    assert [item.key for item in rest] == ["in/3", "in/4"]
    assert store.delete(["in/0", "in/1", "in/never"]) == []
    store.delete_one("in/2")
    assert [item.key for item in store.list_objects("in/")] == ["in/3", "in/4"]
    assert store.stats.s3_ops["put"] == 4 and store.stats.s3_ops["list"] == 3


def test_keys_object_store_cannot_name_are_still_listed_read_and_deleted_exactly(s3_server, bucket, s3_client):
    import botocore.exceptions

    client = s3_server.client()
    for key in HOSTILE_KEYS:
        with contextlib.suppress(botocore.exceptions.ClientError):  # SeaweedFS refuses some, renames 'a//b'
            client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    planted = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "in/trailing/" in planted  # moto keeps every key as written
    store = open_bucket(bucket, s3_server.endpoint_url, "us-east-1", s3_client=s3_client)
    assert [item.key for item in store.list_objects("in/")] == planted
    for key in planted:  # as S3 answers a plain GET (SeaweedFS keeps no body under a key ending in '/')
        assert store.get(key) == client.get_object(Bucket=bucket, Key=key)["Body"].read()
    store.put("in/written/", b"as is")
    assert client.get_object(Bucket=bucket, Key="in/written/")["Body"].read() in (b"as is", b"")
    store.delete_one("in/written/")
    try:
        refused = store.delete(planted)
    except StoreError:  # SeaweedFS refuses the batch (MalformedXML): alone, as the deleter does then
        refused = planted
    for key in refused:
        store.delete_one(key)
    assert list(store.list_objects("in/")) == []
    assert not nameable("in/trailing/") and nameable("in/sp ace")


def test_each_call_is_one_request(s3_server, bucket, fault_proxy, s3_client):
    store = open_bucket(bucket, fault_proxy.endpoint_url, "us-east-1", s3_client=s3_client)
    store.put("in/a", b"a")
    store.get("in/a")
    store.list_objects("in/")
    store.delete(["in/a", "in/b"])
    store.delete_one("in/c")
    counted = fault_proxy.counts()
    assert counted[Op.PUT_OBJECT] == counted[Op.GET_OBJECT] == counted[Op.LIST_OBJECTS] == 1
    assert counted[Op.DELETE_OBJECTS] == counted[Op.DELETE_OBJECT] == 1
    assert sum(counted.values()) == 5


@pytest.mark.parametrize(("fault", "kind"), [
    (Kind.SLOWDOWN, "throttled"), (Kind.ERROR500, "error"), (Kind.RESET, "connection"),
    (Kind.TRUNCATE, "connection"),
])
def test_failures_are_named_alike_and_retried_by_the_guard_only(s3_server, bucket, fault_proxy, s3_client,
                                                                 fault, kind):
    s3_server.client().put_object(Bucket=bucket, Key="in/a", Body=bytes(4000))
    guard = Guard(Stats(), sleep=lambda _: None)
    store = open_bucket(bucket, fault_proxy.endpoint_url, "us-east-1", guard, s3_client=s3_client)
    fault_proxy.inject(fault, ops=Op.GET_OBJECT)
    with pytest.raises(StoreError) as failed:
        store.get("in/a", attempts=3)
    assert failed.value.kind == kind
    assert fault_proxy.count(Op.GET_OBJECT) == 3  # the guard's three attempts, none of the client's own
    assert guard.stats.s3_errors[("get", kind)] == 3
    fault_proxy.clear()
    assert store.get("in/a") == bytes(4000)


def test_missing_bucket_unreachable_endpoint_and_no_credentials_are_named(s3_server, s3_client, monkeypatch):
    with pytest.raises(StoreError, match="bucket does not exist") as missing:
        open_bucket("no-such-bucket", s3_server.endpoint_url, s3_client=s3_client).check_access("")
    assert missing.value.kind == "no_bucket"  # (SeaweedFS makes a missing bucket on a PUT)
    with pytest.raises(StoreError, match="cannot reach") as down:
        open_bucket("b", f"http://127.0.0.1:{free_port()}", s3_client=s3_client).put("k", b"x")
    assert down.value.kind == "unreachable"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # and no instance metadata service is asked
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StoreError, match="no AWS credentials") as anonymous:
        open_bucket("b", s3_server.endpoint_url, "us-east-1", s3_client=s3_client).put("k", b"x")
    assert anonymous.value.kind == "denied"


def test_obstore_signs_with_boto3s_chain(tmp_path, monkeypatch):
    """A profile from the shared credentials file reaches obstore's signer, as it reaches boto3's."""
    import boto3

    (tmp_path / "credentials").write_text("[node]\naws_access_key_id = AKIDNODE\naws_secret_access_key = s\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "node")
    given = BotoCredentials(boto3.session.Session().get_credentials())()
    assert given["access_key_id"] == "AKIDNODE" and given["secret_access_key"] == "s"


def test_obstore_answers_are_classified_as_botocores(s3_server):
    """The same service answer, as each client raises it, gets the same kind."""
    import obstore
    import obstore.exceptions

    bucket = raw_bucket("no-such-bucket", s3_server.endpoint_url, "us-east-1", "obstore")
    with pytest.raises(FileNotFoundError) as raised:
        obstore.get(bucket.store, "k")  # type: ignore[attr-defined]
    assert classify(raised.value)[0] == "no_bucket"
    assert classify(obstore.exceptions.GenericError("Generic S3 error: garbled"))[0] == "error"
