"""The Terraform module and the node policy it renders: structure, the one template, the scanners' verdicts."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import parliament
import pytest

from agent import wire
from agent.config import Config

ROOT = Path(__file__).resolve().parents[1]
TERRAFORM = ROOT / "deploy" / "terraform"
sys.path.insert(0, str(ROOT / "deploy"))  # the renderer sits beside the template, outside any package

import node_policy  # noqa: E402

A = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::a")
A1 = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::a1")
B = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::b")
ACCOUNT = "123456789012"
NODE_ACTIONS = {
    "s3:ListBucket", "s3:GetObject", "s3:DeleteObject", "s3:PutObject",
    "sqs:GetQueueUrl", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
}


def load_module() -> dict[str, list[dict[str, Any]]]:
    """Every block of every .tf file, merged by block type, with strings unquoted and comments kept."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, preserve_heredocs=False)
    module: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        with path.open() as file:
            for kind, blocks in hcl2.load(file, serialization_options=options).items():
                if kind != "__comments__":
                    module.setdefault(kind, []).extend(blocks)
    return module


MODULE = load_module()


def block(kind: str, *labels: str) -> dict[str, Any]:
    """The one block of this kind with these labels, e.g. block("resource", "aws_s3_bucket", "hoshino")."""
    found = []
    for entry in MODULE.get(kind, []):
        node: Any = entry
        for label in labels:
            node = node.get(label) if isinstance(node, dict) else None
        if node is not None:
            found.append(node)
    assert len(found) == 1, f"{kind} {' '.join(labels)}: {len(found)} blocks"
    return found[0]


def resources_of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for entry in MODULE["resource"] for name, body in entry.get(kind, {}).items()}


def policy(address: ipaddress.IPv6Address = A, key_prefix: str = "") -> dict[str, Any]:
    return node_policy.render(address, "my-hoshino", key_prefix, region="us-east-1", account_id=ACCOUNT)


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in document["Statement"]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


# The bucket.

def test_every_tf_file_parses_and_declares_the_module():
    assert {path.name for path in TERRAFORM.glob("*.tf")} >= {"bucket.tf", "doorbell.tf", "nodes.tf", "variables.tf",
                                                            "exit_node.tf"}
    assert set(MODULE) >= {"terraform", "variable", "resource", "data", "output", "locals"}
    aws = MODULE["terraform"][0]["required_providers"][0]["aws"]
    assert aws["source"] == "hashicorp/aws"


def test_bucket_blocks_every_kind_of_public_access():
    access = block("resource", "aws_s3_bucket_public_access_block", "hoshino")
    assert access["bucket"] == "${aws_s3_bucket.hoshino.id}"
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert access[setting] is True, setting
    ownership = block("resource", "aws_s3_bucket_ownership_controls", "hoshino")
    assert ownership["rule"][0]["object_ownership"] == "BucketOwnerEnforced"


def test_bucket_is_encrypted_at_rest_with_sse_s3():
    encryption = block("resource", "aws_s3_bucket_server_side_encryption_configuration", "hoshino")
    assert encryption["bucket"] == "${aws_s3_bucket.hoshino.id}"
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] == "AES256"


def test_bucket_keeps_no_versions():
    versioning = block("resource", "aws_s3_bucket_versioning", "hoshino")
    assert versioning["versioning_configuration"][0]["status"] == "Disabled"


def test_lifecycle_expires_every_object_after_one_day():
    (rule,) = block("resource", "aws_s3_bucket_lifecycle_configuration", "hoshino")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == [{}]  # every object, whatever its prefix
    assert rule["expiration"] == [{"days": 1}]
    assert rule["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 1}]


def test_bucket_policy_refuses_plain_http():
    (statement,) = block("data", "aws_iam_policy_document", "bucket")["statement"]
    assert statement["effect"] == "Deny"
    assert statement["actions"] == ["s3:*"]
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    bucket_policy = block("resource", "aws_s3_bucket_policy", "hoshino")
    assert bucket_policy["policy"] == "${data.aws_iam_policy_document.bucket.json}"


# The doorbells.

def test_one_doorbell_queue_per_node_short_lived_long_polled_encrypted():
    queue = block("resource", "aws_sqs_queue", "doorbell")
    assert queue["for_each"] == "${var.nodes}"
    assert queue["name"] == "${local.queue_names[each.key]}"
    assert queue["message_retention_seconds"] == 60  # SQS's shortest
    assert queue["receive_wait_time_seconds"] == 20  # SQS's longest long poll
    assert queue["sqs_managed_sse_enabled"] is True
    (precondition,) = queue["lifecycle"][0]["precondition"]
    assert precondition["condition"] == "${length(local.queue_names[each.key]) <= 80}"


def hcl_queue_name_prefix(key_prefix: str) -> str:
    """doorbell.tf's queue_name_prefix, its regular expressions applied in the order they are written."""
    expression = block("locals", "queue_name_prefix")
    match = re.fullmatch(
        r'\$\{var\.key_prefix == "" \? "hoshino-" : "hoshino-\$\{replace\(replace\(var\.key_prefix, '
        r'"/(?P<trim>.+?)/", ""\), "/(?P<unsafe>.+?)/", "_"\)\}-"\}',
        expression,
    )
    assert match, expression
    if not key_prefix:
        return "hoshino-"
    trim, unsafe = (match[name].replace("\\\\", "\\") for name in ("trim", "unsafe"))  # HCL string escapes
    return f"hoshino-{re.sub(unsafe, '_', re.sub(trim, '', key_prefix))}-"


@pytest.mark.parametrize("key_prefix", ["", "net1/", "net1", "a.b/c//", "(x)!'/y-z_"])
def test_terraform_and_python_name_queues_alike(key_prefix):
    assert hcl_queue_name_prefix(key_prefix) == node_policy.queue_name_prefix(key_prefix)
    assert block("locals", "queue_names") == (
        '${{for name, address in var.nodes : name => "${local.queue_name_prefix}${replace(address, ":", "-")}"}}'
    )


@pytest.mark.parametrize(
    ("address", "key_prefix", "name"),
    [
        (B, "", "hoshino-fd5e-59b8-f71d-9a3e--b"),
        (B, "net1/", "hoshino-net1-fd5e-59b8-f71d-9a3e--b"),
        (B, "team.a/net1//", "hoshino-team_a_net1-fd5e-59b8-f71d-9a3e--b"),
        (ipaddress.IPv6Address("2001:db8:0:1:1:1:1:1"), "", "hoshino-2001-db8-0-1-1-1-1-1"),
    ],
)
def test_queue_names(address, key_prefix, name):
    assert node_policy.queue_name(address, key_prefix) == name


def test_a_queue_name_over_80_characters_is_refused():
    with pytest.raises(node_policy.PolicyError, match="80 characters"):
        node_policy.queue_name(ipaddress.IPv6Address("2001:db8:1:2:3:4:5:6"), "p" * 60)


# The nodes' identities.

def test_each_node_gets_a_user_an_access_key_and_the_templated_policy():
    for kind in ("aws_iam_user", "aws_iam_user_policy", "aws_iam_access_key"):
        assert block("resource", kind, "node")["for_each"] == "${var.nodes}", kind
    assert block("resource", "aws_iam_user", "node")["name"] == "hoshino-${each.key}"
    assert resources_of_type("aws_iam_user_policy").keys() == {"node"}
    assert "aws_iam_user_policy_attachment" not in {kind for entry in MODULE["resource"] for kind in entry}
    assert "aws_iam_policy" not in {kind for entry in MODULE["resource"] for kind in entry}


def templatefile_variables() -> dict[str, str]:
    """The variables nodes.tf passes to templatefile, by name, as HCL expressions."""
    expression = block("resource", "aws_iam_user_policy", "node")["policy"]
    match = re.fullmatch(r'\$\{templatefile\("\$\{path\.module\}/node-policy\.json\.tftpl", \{(.*)\}\)\}', expression)
    assert match, expression
    return dict(re.findall(r"(\w+) = ([^,]+)", match[1]))


def test_terraform_and_the_renderer_fill_in_the_same_template_variables():
    template = (TERRAFORM / "node-policy.json.tftpl").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", template))
    passed = templatefile_variables()
    assert used == passed.keys() == node_policy.template_variables(A, "my-hoshino").keys()
    assert passed["inbox"] == '"${var.key_prefix}${each.value}/"'
    assert passed["key_prefix"] == "var.key_prefix"
    assert passed["queue_name_prefix"] == "local.queue_name_prefix"
    assert passed["queue_name"] == "aws_sqs_queue.doorbell[each.key].name"
    assert passed["bucket"] == "aws_s3_bucket.hoshino.bucket"


def validation_pattern(variable: str, index: int = 0) -> str:
    condition = block("variable", variable)["validation"][index]["condition"]
    match = re.search(r'regex\("(.+?)", ', condition)
    assert match, condition
    return match[1].replace("\\\\", "\\")


def test_terraform_and_the_renderer_accept_the_same_key_prefixes():
    assert validation_pattern("key_prefix") == node_policy.KEY_PREFIX_PATTERN


def test_a_key_prefix_ends_in_a_slash_in_terraform_and_the_renderer_as_in_the_agent():
    # Without the slash, the statements for net1 would cover net10's objects as well (regex() searches, as re.search).
    ends_in_slash = validation_pattern("key_prefix", 1)
    assert [bool(re.search(ends_in_slash, p)) for p in ("", "net1/", "a/b/", "net1", "a/b")] == [True] * 3 + [False] * 2
    assert policy(A, "net1") == policy(A, "net1/")
    assert Config(bucket="b", key_prefix="net1").key_prefix == "net1/"


@pytest.mark.parametrize("key_prefix", ["*", "net?/", "${aws:username}/", 'a"b', "a b/", "a\\b"])
def test_prefixes_that_would_widen_or_break_the_policy_are_refused(key_prefix):
    assert not re.match(validation_pattern("key_prefix"), key_prefix)
    with pytest.raises(node_policy.PolicyError, match="key prefix"):
        policy(A, key_prefix)


def test_addresses_must_be_written_as_the_agent_writes_them():
    condition = block("variable", "nodes")["validation"][1]["condition"]
    assert 'try(cidrhost("${address}/128", 0) == address, false)' in condition
    with pytest.raises(node_policy.PolicyError, match="zone"):
        policy(ipaddress.IPv6Address("fe80::1%eth0"))


def test_outputs_keep_the_secrets_sensitive():
    credentials = block("output", "credentials")
    assert credentials["sensitive"] is True
    assert "aws_iam_access_key.node" in credentials["value"]
    assert block("output", "bucket")["value"] == "${aws_s3_bucket.hoshino.bucket}"


# Replace a NAT gateway: the S3 gateway endpoint and the exit node's security group.

def test_the_private_subnets_reach_s3_through_a_gateway_endpoint():
    endpoint = block("resource", "aws_vpc_endpoint", "s3")
    assert endpoint["vpc_endpoint_type"] == "Gateway"  # free, unlike an interface endpoint
    assert endpoint["service_name"] == "com.amazonaws.${data.aws_region.current.region}.s3"
    assert endpoint["route_table_ids"] == "${var.private_route_table_ids}"
    assert block("variable", "vpc_id")["default"] is None  # nothing of it is made unless asked for


def test_the_exit_node_takes_nothing_in_and_sends_out_only_named_ports():
    group = block("resource", "aws_security_group", "exit_node")
    assert "ingress" not in group and "egress" not in group  # rules of their own, below, and none inbound
    assert "aws_vpc_security_group_ingress_rule" not in {kind for entry in MODULE["resource"] for kind in entry}
    rules = resources_of_type("aws_vpc_security_group_egress_rule")
    assert set(rules) == {"exit_node_s3", "exit_node_ipv4", "exit_node_ipv6"}
    for name, rule in rules.items():
        assert rule["from_port"] == rule["to_port"], name  # one port each, never a range nor every protocol
        assert rule["ip_protocol"] != "-1", name
    assert rules["exit_node_s3"]["prefix_list_id"] == "${aws_vpc_endpoint.s3[each.key].prefix_list_id}"
    assert (rules["exit_node_ipv4"]["cidr_ipv4"], rules["exit_node_ipv6"]["cidr_ipv6"]) == ("0.0.0.0/0", "::/0")
    egress = block("variable", "exit_node_egress")
    assert egress["default"] == {"https": {"protocol": "tcp", "port": 443}, "http": {"protocol": "tcp", "port": 80}}
    assert 'contains(["tcp", "udp"], rule.protocol)' in egress["validation"][0]["condition"]
    for output in ("exit_node_security_group_id", "s3_gateway_endpoint_id", "s3_prefix_list_id"):
        assert block("output", output)["value"].startswith("${try("), output


# The rendered policy: what a node may do.

@pytest.mark.parametrize("key_prefix", ["", "net1/"])
@pytest.mark.parametrize("address", [A, A1, B])
def test_a_node_lists_exactly_its_own_inbox(address, key_prefix):
    document = policy(address, key_prefix)
    listing = [s for s in document["Statement"] if "s3:ListBucket" in as_list(s["Action"])]
    assert len(listing) == 1
    (statement,) = listing
    assert statement["Resource"] == "arn:aws:s3:::my-hoshino"
    # Exactly the prefix the agent lists with: not a pattern (StringLike), not one of several values.
    assert statement["Condition"] == {"StringEquals": {"s3:prefix": wire.inbox(key_prefix, address)}}


@pytest.mark.parametrize("key_prefix", ["", "net1/"])
def test_a_node_reads_and_deletes_only_its_own_inbox_and_writes_into_any(key_prefix):
    rules = statements(policy(A, key_prefix))
    assert set(rules) == {
        "ListOwnInbox", "ReadAndDeleteOwnInbox", "SendToAnyInbox", "RingAnyDoorbell", "AnswerOwnDoorbell",
    }
    assert rules["ReadAndDeleteOwnInbox"]["Action"] == ["s3:GetObject", "s3:DeleteObject"]
    assert rules["ReadAndDeleteOwnInbox"]["Resource"] == f"arn:aws:s3:::my-hoshino/{key_prefix}fd5e:59b8:f71d:9a3e::a/*"
    assert rules["SendToAnyInbox"]["Action"] == "s3:PutObject"
    assert rules["SendToAnyInbox"]["Resource"] == f"arn:aws:s3:::my-hoshino/{key_prefix}*"
    assert rules["RingAnyDoorbell"]["Action"] == ["sqs:GetQueueUrl", "sqs:SendMessage"]
    queues = f"arn:aws:sqs:us-east-1:{ACCOUNT}:"
    assert rules["RingAnyDoorbell"]["Resource"] == f"{queues}{node_policy.queue_name_prefix(key_prefix)}*"
    assert rules["AnswerOwnDoorbell"]["Action"] == ["sqs:ReceiveMessage", "sqs:DeleteMessage"]
    assert rules["AnswerOwnDoorbell"]["Resource"] == f"{queues}{node_policy.queue_name(A, key_prefix)}"


def test_the_policy_allows_only_named_actions_and_nothing_by_exclusion():
    document = policy(A, "net1/")
    assert document["Version"] == "2012-10-17"
    granted = set()
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement.keys() <= {"Sid", "Effect", "Action", "Resource", "Condition"}  # no NotAction, NotResource
        for action in as_list(statement["Action"]):
            assert "*" not in action and "?" not in action
            granted.add(action)
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
    assert granted == NODE_ACTIONS


def test_own_inbox_patterns_do_not_reach_a_neighbour_whose_address_extends_it():
    own = statements(policy(A))["ReadAndDeleteOwnInbox"]["Resource"]
    neighbour = f"arn:aws:s3:::my-hoshino/{wire.inbox('', A1)}01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert own.endswith("::a/*")
    assert not neighbour.startswith(own.removesuffix("*"))


def test_the_largest_policy_fits_an_inline_user_policy():
    # IAM counts an inline user policy's characters without whitespace: 2,048 at most.
    address = ipaddress.IPv6Address("2001:db8:1:2:3:4:5:6")  # no "::": the longest text an address has
    longest_prefix = "p" * (node_policy.QUEUE_NAME_LIMIT - len(node_policy.queue_name(address)) - len("-"))
    assert len(node_policy.queue_name(address, longest_prefix)) == node_policy.QUEUE_NAME_LIMIT
    document = node_policy.render(address, "b" * 63, longest_prefix, region="ap-southeast-2", account_id=ACCOUNT)
    assert len(json.dumps(document, separators=(",", ":"))) <= 2048


def test_parliament_knows_every_action_condition_key_and_resource_type():
    findings = parliament.analyze_policy_string(json.dumps(policy(A, "net1/"), indent=2)).findings
    # parliament splits an ARN at every ':', so it takes an object ARN holding an IPv6 address for a
    # malformed one; S3 object keys may hold ':' and IAM matches them as written. Only that finding
    # may remain, and only for the own-inbox statement.
    unexplained = [
        finding for finding in findings
        if not (finding.issue == "RESOURCE_MISMATCH"
                and {detail["action"] for detail in finding.detail} <= {"s3:GetObject", "s3:DeleteObject"})
    ]
    assert unexplained == [], [(finding.issue, finding.detail) for finding in unexplained]
    # And with an address free of ':' in the same place, parliament finds nothing at all.
    colon_free = json.dumps(policy(A, "net1/")).replace("fd5e:59b8:f71d:9a3e::a", "fd5e-59b8-f71d-9a3e--a")
    assert parliament.analyze_policy_string(colon_free).findings == []


# The renderer itself.

def test_the_renderer_substitutes_as_templatefile_does_and_refuses_what_it_cannot():
    assert node_policy.render_template("${a}-${b_1}", {"a": "x", "b_1": "y", "unused": "z"}) == "x-y"
    with pytest.raises(node_policy.PolicyError, match="not given: b"):
        node_policy.render_template("${a}${b}", {"a": "x"})
    for text in ("%{ if a }x%{ endif }", "${upper(a)}", "$${a}"):
        with pytest.raises(node_policy.PolicyError, match="directives or expressions"):
            node_policy.render_template(text, {"a": "x"})


def test_node_policy_script_prints_the_document():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "node-policy"), "fd5e:59b8:f71d:9a3e:0::a", "my-hoshino", "net1/",
         "--account", ACCOUNT, "--region", "us-east-1"],
        capture_output=True, text=True, check=True,
    )
    assert json.loads(result.stdout) == policy(A, "net1/")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["not-an-address", "my-hoshino"], "not-an-address"),
        (["fd5e::a", "My_Bucket"], "bucket name"),
        (["fd5e::a", "my-hoshino", "net*/"], "key prefix"),
        (["fd5e::a", "my-hoshino", "--account", "12"], "account id"),
    ],
)
def test_node_policy_script_refuses_bad_input_clearly(arguments, message):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "node-policy"), *arguments],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr


# checkov.

def checkov_program() -> str | None:
    local = ROOT / ".venv" / "checkov" / "bin" / "checkov"
    return str(local) if local.exists() else shutil.which("checkov")


def skip_comments() -> dict[str, str]:
    """Every `#checkov:skip=ID:reason` in the module, by check ID."""
    found: dict[str, str] = {}
    for path in TERRAFORM.glob("*.tf"):
        for check, reason in re.findall(r"#checkov:skip=(\w+):(.*)", path.read_text()):
            found[check] = reason.strip()
    return found


def test_checkov_finds_nothing_unexplained():
    program = checkov_program()
    if program is None:
        pytest.skip("checkov is not installed: `make checkov` puts it in .venv/checkov")
    # --skip-download: checkov would otherwise fetch guideline links from its vendor's API.
    result = subprocess.run(
        [program, "--directory", str(TERRAFORM), "--framework", "terraform", "--skip-download", "--compact",
         "--output", "json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    report = json.loads(result.stdout)
    results = report["results"]
    failed = [(check["check_id"], check["resource"], check["check_name"]) for check in results["failed_checks"]]
    assert failed == [], failed
    assert report["summary"]["parsing_errors"] == 0
    assert result.returncode == 0, result.stderr[-2000:]
    skipped = {check["check_id"] for check in results["skipped_checks"]}
    comments = skip_comments()
    assert skipped == comments.keys(), "a skip without a check to skip, or a check skipped elsewhere"
    for check, reason in comments.items():
        assert len(reason) > 40, f"{check}: say why"
    passed = {check["check_id"] for check in results["passed_checks"]}
    # The checks this module is built to pass, by name: public access, encryption, lifecycle, SQS.
    assert passed >= {"CKV2_AWS_6", "CKV_AWS_19", "CKV2_AWS_61", "CKV_AWS_300", "CKV_AWS_27", "CKV2_AWS_65"}
    # The exit node's group: described, no SSH, RDP or HTTP in, no egress to every port.
    exit_node = {check["check_id"] for check in results["passed_checks"]
                 if check["resource"] == "aws_security_group.exit_node"}
    assert exit_node >= {"CKV_AWS_23", "CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_382"}
    print(f"checkov {report['summary']['checkov_version']}: {len(passed)} passed, 0 failed, "
          f"{len(skipped)} skipped with reasons: {', '.join(sorted(skipped))}")
