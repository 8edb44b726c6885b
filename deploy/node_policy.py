"""Render a node's IAM policy from the template Terraform uses, for nodes set up without Terraform."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from pathlib import Path
from typing import Any

TEMPLATE = Path(__file__).resolve().parent / "terraform" / "node-policy.json.tftpl"
QUEUE_NAME_LIMIT = 80
# The same pattern as variable "key_prefix"'s validation in variables.tf (a test compares them):
# the prefix lands in ARNs, where * and ? are wildcards and $ a variable, and in JSON strings.
KEY_PREFIX_PATTERN = r"^[A-Za-z0-9!_.'()/-]*$"
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ARN_PART = {"partition": r"^aws[a-z-]*$", "region": r"^([a-z0-9-]+|\*)$", "account_id": r"^(\d{12}|\*)$"}
_BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class PolicyError(ValueError):
    """An input that would make a wrong or unsafe policy."""


def render_template(text: str, variables: dict[str, str]) -> str:
    """Substitute ${name} as Terraform's templatefile does; refuse any other template syntax."""
    if "%{" in text or "$${" in text or "${" in _INTERPOLATION.sub("", text):
        raise PolicyError("the template holds directives or expressions other than ${name}")
    missing = sorted(set(_INTERPOLATION.findall(text)) - variables.keys())
    if missing:
        raise PolicyError(f"the template needs variables that were not given: {', '.join(missing)}")
    return _INTERPOLATION.sub(lambda match: variables[match[1]], text)


def queue_name_prefix(key_prefix: str = "") -> str:
    """'hoshino-' and, with a key prefix, the prefix made safe for a queue name and a '-'."""
    if not key_prefix:
        return "hoshino-"
    return f"hoshino-{re.sub(r'[^A-Za-z0-9_-]', '_', key_prefix.rstrip('/'))}-"


def queue_name(address: ipaddress.IPv6Address, key_prefix: str = "") -> str:
    """The node's doorbell queue: hoshino-, the prefix part, the address with ':' as '-'."""
    name = queue_name_prefix(key_prefix) + address.compressed.replace(":", "-")
    if len(name) > QUEUE_NAME_LIMIT:
        raise PolicyError(f"queue name {name} is over SQS's {QUEUE_NAME_LIMIT} characters: shorten the key prefix")
    return name


def template_variables(
    address: ipaddress.IPv6Address,
    bucket: str,
    key_prefix: str = "",
    *,
    partition: str = "aws",
    region: str = "*",
    account_id: str = "*",
) -> dict[str, str]:
    """The values Terraform passes to templatefile for this node (nodes.tf), checked as variables.tf does;
    a key prefix gets the trailing '/' hoshino-agent adds to its --key-prefix."""
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    if address.scope_id:
        raise PolicyError(f"{address} has a zone: a node's address has none")
    if not re.match(KEY_PREFIX_PATTERN, key_prefix):
        raise PolicyError(f"key prefix {key_prefix!r} may hold only A-Z a-z 0-9 ! _ . ' ( ) / -")
    if not re.match(_BUCKET, bucket):
        raise PolicyError(f"{bucket!r} is not an S3 bucket name")
    arn_parts = {"partition": partition, "region": region, "account_id": account_id}
    for part, value in arn_parts.items():
        if not re.match(_ARN_PART[part], value):
            raise PolicyError(f"{value!r} is not a valid {part.replace('_', ' ')}")
    return {
        **arn_parts,
        "bucket": bucket,
        "key_prefix": key_prefix,
        "inbox": f"{key_prefix}{address.compressed}/",
        "queue_name_prefix": queue_name_prefix(key_prefix),
        "queue_name": queue_name(address, key_prefix),
    }


def render(address: ipaddress.IPv6Address, bucket: str, key_prefix: str = "", **arn_parts: str) -> dict[str, Any]:
    """The node's policy document, parsed."""
    text = render_template(TEMPLATE.read_text(), template_variables(address, bucket, key_prefix, **arn_parts))
    document: dict[str, Any] = json.loads(text)
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="node-policy",
        description="Print the IAM policy of one Hoshino node: PUT into every inbox; list, GET and delete "
                    "its own; ring every doorbell, answer its own. The same document Terraform attaches.",
    )
    parser.add_argument("address", help="the node's IPv6 address, as hoshino-agent prints it at start")
    parser.add_argument("bucket", help="the bucket that carries the packets")
    parser.add_argument("key_prefix", nargs="?", default="",
                        help="the nodes' --key-prefix, if any (a missing trailing '/' is added, as the agent does)")
    parser.add_argument("--account", default="*", help="AWS account of the doorbell queues (default: any)")
    parser.add_argument("--region", default="*", help="AWS region of the doorbell queues (default: any)")
    parser.add_argument("--partition", default="aws", help="AWS partition (default: aws)")
    args = parser.parse_args(argv)
    try:
        address = ipaddress.IPv6Address(args.address)
        document = render(address, args.bucket, args.key_prefix,
                          partition=args.partition, region=args.region, account_id=args.account)
    except ValueError as error:  # PolicyError included
        parser.exit(2, f"node-policy: error: {error}\n")
    json.dump(document, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
