"""The rendered node policies, enforced: moto's server with IAM on, each node holding only its own keys.

moto enforces identity policies on S3 and SQS requests once its first N requests have passed
(INITIAL_NO_AUTH_ACTION_COUNT, or POST /moto-api/reset-auth with the new N, as here). What it does
not evaluate, and how each is covered instead:
- condition keys on S3 and SQS requests (it fills in no request context), so `s3:prefix` on
  ListBucket passes whatever the prefix: tests/test_deploy.py checks the rendered statement restricts
  ListBucket to exactly the inbox the agent lists (`StringEquals`, one value);
- DeleteObjects: moto asks for s3:DeleteObject on the *bucket* ARN, where AWS authorizes each key
  against its object ARN, so a node's batch delete of its own objects comes back AccessDenied key by
  key here; single DeleteObject is checked per key, as AWS does, and is what these tests use;
- HeadBucket: moto checks an `s3:HeadBucket` action that IAM does not have (AWS asks for ListBucket
  with no prefix, which the node policy denies too): a node checks its access by listing its inbox;
- sqs:GetQueueUrl: moto authorizes it against "*" rather than the queue's ARN, so a queue-scoped
  policy never allows it there; and it checks the batch calls under their own names
  (sqs:SendMessageBatch), which IAM authorizes as SendMessage and DeleteMessage. The tests use queue
  URLs and single messages; tests/test_deploy.py checks those statements and parliament their names.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from agent import wire
from agent.lab import Lab, S3Server, run_in

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))  # the renderer sits beside the template, outside any package

import node_policy  # noqa: E402

REGION = "us-east-1"
NETWORK = ipaddress.IPv6Network("fd5e:59b8:f71d:9a3e::/64")
NODES = {"a": NETWORK[0xA], "a1": NETWORK[0xA1], "b": NETWORK[0xB]}


@dataclass(frozen=True)
class Node:
    """One node's identity on the local server: its address, doorbell and access key."""

    name: str
    address: ipaddress.IPv6Address
    key_prefix: str
    queue_url: str
    access_key_id: str
    secret_access_key: str

    @property
    def inbox(self) -> str:
        return wire.inbox(self.key_prefix, self.address)

    @property
    def environment(self) -> dict[str, str]:
        """The agent's environment: this node's keys and nothing else."""
        return {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_DEFAULT_REGION": REGION}

    def client(self, service: str, server: S3Server) -> Any:
        return boto3.client(service, endpoint_url=server.endpoint_url, region_name=REGION,
                            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key)


def provision(
    server: S3Server, bucket: str, nodes: dict[str, ipaddress.IPv6Address], key_prefix: str = "",
) -> dict[str, Node]:
    """What nodes.tf and doorbell.tf make, on the local server, with the renderer's documents."""
    admin: dict[str, Any] = {
        service: boto3.client(service, endpoint_url=server.endpoint_url, region_name=REGION)
        for service in ("iam", "sqs", "sts")
    }
    account = admin["sts"].get_caller_identity()["Account"]
    made = {}
    for name, address in nodes.items():
        queue = admin["sqs"].create_queue(
            QueueName=node_policy.queue_name(address, key_prefix),
            Attributes={"MessageRetentionPeriod": "60", "ReceiveMessageWaitTimeSeconds": "20"},
        )
        document = node_policy.render(address, bucket, key_prefix, region=REGION, account_id=account)
        user = f"hoshino-{name}"
        admin["iam"].create_user(UserName=user)
        admin["iam"].put_user_policy(UserName=user, PolicyName="hoshino-node", PolicyDocument=json.dumps(document))
        key = admin["iam"].create_access_key(UserName=user)["AccessKey"]
        made[name] = Node(name, address, key_prefix, queue["QueueUrl"], key["AccessKeyId"], key["SecretAccessKey"])
    return made


def enforce_iam(server: S3Server) -> None:
    """From now on every request must be signed by a user whose policies allow it."""
    request = urllib.request.Request(f"{server.endpoint_url}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["status"] == "ok"


def denied(call: Any, *args: Any, **kwargs: Any) -> bool:
    """True if the server refused the call as not allowed, False if it went through; other errors raise."""
    try:
        call(*args, **kwargs)
    except ClientError as error:
        # moto answers SQS's JSON protocol with an XML error body, which botocore files under Message.
        detail = error.response["Error"]
        if error.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and "AccessDenied" in (
            detail.get("Code", "") + detail.get("Message", "")
        ):
            return True
        raise
    return False


@dataclass
class Enforced:
    server: S3Server
    bucket: str
    nodes: dict[str, Node]
    planted: dict[str, str]  # node name -> key of an object waiting in its inbox

    def s3(self, name: str) -> Any:
        return self.nodes[name].client("s3", self.server)

    def sqs(self, name: str) -> Any:
        return self.nodes[name].client("sqs", self.server)


@pytest.fixture(scope="module", params=["", "net1/"], ids=["no-prefix", "prefix"])
def enforced(request: pytest.FixtureRequest) -> Iterator[Enforced]:
    """A server of its own (IAM on would break every other test's), a bucket, three nodes, a packet for each."""
    key_prefix: str = request.param
    with S3Server() as server:
        bucket = f"iam-{secrets.token_hex(4)}"
        server.create_bucket(bucket)
        nodes = provision(server, bucket, NODES, key_prefix)
        keys = wire.KeyMaker(key_prefix)
        planted = {name: keys.make(node.address) for name, node in nodes.items()}
        for key in planted.values():
            server.client().put_object(Bucket=bucket, Key=key, Body=b"\x60" + bytes(39))
        enforce_iam(server)
        yield Enforced(server, bucket, nodes, planted)


def test_iam_is_on_for_anyone_without_a_node_key(enforced):
    with pytest.raises(ClientError) as error:
        enforced.server.client().list_objects_v2(Bucket=enforced.bucket)
    assert error.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_a_node_puts_into_another_nodes_inbox(enforced):
    key = wire.KeyMaker(enforced.nodes["a"].key_prefix).make(enforced.nodes["b"].address)
    enforced.s3("a").put_object(Bucket=enforced.bucket, Key=key, Body=b"ping")
    assert enforced.s3("b").get_object(Bucket=enforced.bucket, Key=key)["Body"].read() == b"ping"
    enforced.s3("b").delete_object(Bucket=enforced.bucket, Key=key)


@pytest.mark.parametrize("other", ["b", "a1"])
def test_a_node_cannot_read_or_delete_another_nodes_mail(enforced, other):
    # a1's inbox "...::a1/" begins with a's address: only the slash keeps it out of a's reach.
    key = enforced.planted[other]
    a = enforced.s3("a")
    assert denied(a.get_object, Bucket=enforced.bucket, Key=key)
    assert denied(a.delete_object, Bucket=enforced.bucket, Key=key)
    assert enforced.s3(other).head_object(Bucket=enforced.bucket, Key=key)["ContentLength"] == 40  # still there


def test_a_node_lists_reads_and_deletes_its_own_mail(enforced):
    a = enforced.s3("a")
    node = enforced.nodes["a"]
    # The agent's start check and its poll: ListObjectsV2 of its own inbox.
    listed = a.list_objects_v2(Bucket=enforced.bucket, Prefix=node.inbox, MaxKeys=1)
    assert [item["Key"] for item in listed["Contents"]] == [enforced.planted["a"]]
    key = wire.KeyMaker(node.key_prefix).make(node.address)
    a.put_object(Bucket=enforced.bucket, Key=key, Body=b"to myself")
    assert a.get_object(Bucket=enforced.bucket, Key=key)["Body"].read() == b"to myself"
    a.delete_object(Bucket=enforced.bucket, Key=key)
    assert key not in [item["Key"] for item in a.list_objects_v2(Bucket=enforced.bucket, Prefix=node.inbox)["Contents"]]


def test_a_node_rings_another_nodes_doorbell_but_cannot_answer_it(enforced):
    a, b = enforced.sqs("a"), enforced.sqs("b")
    b_queue = enforced.nodes["b"].queue_url
    a.send_message(QueueUrl=b_queue, MessageBody="ring")
    assert denied(a.receive_message, QueueUrl=b_queue, WaitTimeSeconds=0)
    (message,) = b.receive_message(QueueUrl=b_queue, WaitTimeSeconds=5)["Messages"]
    assert message["Body"] == "ring"
    assert denied(a.delete_message, QueueUrl=b_queue, ReceiptHandle=message["ReceiptHandle"])
    b.delete_message(QueueUrl=b_queue, ReceiptHandle=message["ReceiptHandle"])


def test_a_node_answers_its_own_doorbell(enforced):
    a = enforced.sqs("a")
    own = enforced.nodes["a"].queue_url
    enforced.sqs("b").send_message(QueueUrl=own, MessageBody="ring")
    (message,) = a.receive_message(QueueUrl=own, WaitTimeSeconds=5)["Messages"]
    a.delete_message(QueueUrl=own, ReceiptHandle=message["ReceiptHandle"])
    assert a.receive_message(QueueUrl=own, WaitTimeSeconds=0).get("Messages", []) == []


def test_a_node_cannot_make_or_remove_queues(enforced):
    a = enforced.sqs("a")
    assert denied(a.create_queue, QueueName=f"hoshino-{secrets.token_hex(4)}")
    assert denied(a.delete_queue, QueueUrl=enforced.nodes["b"].queue_url)


@pytest.mark.root
def test_two_agents_carry_ping_with_only_their_own_keys():
    with Lab(bucket=f"iam-e2e-{secrets.token_hex(4)}") as lab:
        nodes = provision(lab.server, lab.bucket, {role: lab.address(role) for role in ("local", "peer")})
        enforce_iam(lab.server)
        for role, node in nodes.items():
            process = lab.spawn_agent(role, env=node.environment)
            assert "hoshino-agent: error" not in lab.agent_log(process), lab.agent_log(process)
        for source, target in (("local", "peer"), ("peer", "local")):
            result = run_in(lab.namespaces[source].name, "ping", "-6", "-n", "-c", "5", "-i", "0.2", "-W", "5",
                            str(lab.address(target)), timeout=60)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "5 packets transmitted, 5 received, 0% packet loss" in result.stdout
        # The lab's own keys count for nothing now: the agents moved the packets with theirs alone.
        with pytest.raises(ClientError) as error:
            lab.server.client().list_objects_v2(Bucket=lab.bucket)
        assert error.value.response["Error"]["Code"] == "InvalidAccessKeyId"
