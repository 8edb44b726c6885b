"""What a node's requests and traffic cost: price tables, their presets, and TOML files that override them.

Figures are list prices in US dollars; a table prices one request, a number of bytes moved, and the NAT
gateway the tunnel is compared with. Free tiers are left out: they are allowances per account and
month, which a figure per node or per request cannot share out.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

GB = 1 << 30
"""AWS bills data by the GB of 2**30 bytes (its S3 FAQ's examples divide kilobytes by 1,048,576)."""

OPERATIONS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # Named as the agent counts them (agent/metrics.py): "delete" is a DeleteObjects batch, "head" a HeadBucket.
    "s3": ("put", "get", "list", "delete", "head", "copy", "post"),
    "sqs": ("send", "send_batch", "receive", "delete", "delete_batch", "change_visibility", "create", "get_url",
            "get_attributes", "set_attributes", "purge", "delete_queue", "list_queues"),
})
"""The operations each service is priced for; a request for any other is an error, so a typo is caught."""
ANY = "*"
"""In a table of request prices: the price of every operation the table does not name."""
DIRECTIONS = ("in", "out")
"""Data transfer into the service (uploads) and out of it (downloads to the node)."""


class PriceError(ValueError):
    """A price table that cannot be loaded or used, with a message saying what is wrong."""


@dataclass(frozen=True)
class ServicePrices:
    """What one service (S3 or SQS) charges."""

    per_request: Mapping[str, float]
    """Dollars for one request, by operation; ANY prices the operations not named."""
    per_gb: Mapping[str, float] = field(default_factory=dict)
    """Dollars per GB of a request's payload, by operation (S3 Express's upload and retrieval charges)."""
    free_bytes_per_request: int = 0
    """Payload bytes of each request that per_gb does not charge."""
    chunk_bytes: int = 0
    """A payload is billed as one request per started chunk of this size (SQS: 64 KiB); 0: always one."""
    transfer_per_gb: Mapping[str, float] = field(default_factory=dict)
    """Network data transfer in dollars per GB, by direction ('in', 'out'); missing: free."""

    def fee(self, service: str, operation: str) -> float:
        if operation not in OPERATIONS[service]:
            raise PriceError(f"unknown {service} operation {operation!r} (known: {', '.join(OPERATIONS[service])})")
        price = self.per_request.get(operation, self.per_request.get(ANY))
        if price is None:
            raise PriceError(f"no price for {service} operation {operation!r}")
        return price


@dataclass(frozen=True)
class PriceTable:
    """Prices of the requests and traffic of a node, and of the NAT gateway it is compared with."""

    name: str
    description: str
    services: Mapping[str, ServicePrices]
    nat_gateway_per_hour: float
    nat_gateway_per_gb: float

    def _service(self, service: str) -> ServicePrices:
        try:
            return self.services[service]
        except KeyError:
            raise PriceError(f"unknown service {service!r} (known: {', '.join(self.services)})") from None

    def request(self, service: str, operation: str, payload_bytes: int = 0) -> float:
        """Dollars for one request carrying payload_bytes (sent or returned), per-GB charges included."""
        return self.requests(service, operation, 1, payload_bytes)

    def requests(self, service: str, operation: str, count: float, payload_bytes: float = 0) -> float:
        """Dollars for count requests that carry payload_bytes between them, shared out evenly."""
        prices = self._service(service)
        fee = prices.fee(service, operation)
        if payload_bytes < 0:
            raise PriceError(f"payload_bytes must not be negative: {payload_bytes}")
        if count <= 0:
            return 0.0
        each = payload_bytes / count
        chunks = max(1, math.ceil(each / prices.chunk_bytes)) if prices.chunk_bytes else 1
        charged = max(0.0, each - prices.free_bytes_per_request)
        return count * (fee * chunks + prices.per_gb.get(operation, 0.0) * charged / GB)

    def transfer(self, service: str, direction: str, nbytes: float) -> float:
        """Dollars for moving nbytes into ('in') or out of ('out') the service over the network."""
        if direction not in DIRECTIONS:
            raise PriceError(f"unknown direction {direction!r} (known: {', '.join(DIRECTIONS)})")
        return self._service(service).transfer_per_gb.get(direction, 0.0) * nbytes / GB

    def nat_gateway(self, hours: float, nbytes: float) -> float:
        """Dollars a NAT gateway charges for being up so many hours and processing nbytes."""
        return hours * self.nat_gateway_per_hour + nbytes / GB * self.nat_gateway_per_gb


def _per_thousand(**prices: float) -> dict[str, float]:
    return {operation: price / 1_000 for operation, price in prices.items()}


def _per_million(**prices: float) -> dict[str, float]:
    return {operation: price / 1_000_000 for operation, price in prices.items()}


# Amazon SQS, us-east-1 (https://aws.amazon.com/sqs/pricing/): standard queue, $0.40 per million requests
# after the free first million a month; every API action is a request, and each 64 KB chunk of a payload
# is billed as one request.
_SQS = ServicePrices(per_request={ANY: 0.40 / 1_000_000}, chunk_bytes=64 * 1024)
# NAT gateway, us-east-1 (https://aws.amazon.com/vpc/pricing/): $0.045 per hour and $0.045 per GB processed.
_NAT = {"nat_gateway_per_hour": 0.045, "nat_gateway_per_gb": 0.045}

PRESETS: Mapping[str, PriceTable] = MappingProxyType({
    # S3 Standard, us-east-1 (https://aws.amazon.com/s3/pricing/, "Requests & data retrievals"):
    # PUT, COPY, POST, LIST $0.005 per 1,000; GET, SELECT and all other requests $0.0004 per 1,000;
    # DELETE and CANCEL free. Transfer into S3 is free, and so is transfer out to EC2 in the same region;
    # nodes outside AWS pay for transfer out to the internet ($0.09/GB for the first 10 TB a month):
    # set [s3.transfer_per_gb] out = 0.09 in a prices file.
    "aws-s3-standard": PriceTable(
        name="aws-s3-standard",
        description="S3 Standard and SQS in us-east-1, nodes in the same region",
        services=MappingProxyType({
            "s3": ServicePrices(per_request=_per_thousand(put=0.005, copy=0.005, post=0.005, list=0.005,
                                                          get=0.0004, head=0.0004, delete=0.0)),
            "sqs": _SQS,
        }),
        **_NAT,
    ),
    # S3 Express One Zone, us-east-1 (https://aws.amazon.com/s3/pricing/; worked examples in
    # https://aws.amazon.com/s3/faqs/, "S3 Express One Zone" billing): PUT, COPY, POST, LIST $0.00113 per
    # 1,000; GET and all other requests $0.00003 per 1,000; DELETE free; plus $0.0032 per GB uploaded and
    # $0.0006 per GB retrieved. Since the April 2025 price cut the FAQ's example charges those per-GB
    # rates on every byte (10 KB requests); before it they applied only to the part of a request over
    # 512 KB. To model the old rule, set [s3] free_bytes_per_request = 524288 in a prices file.
    "aws-s3-express": PriceTable(
        name="aws-s3-express",
        description="S3 Express One Zone directory bucket and SQS in us-east-1, nodes in the same zone",
        services=MappingProxyType({
            "s3": ServicePrices(
                per_request=_per_thousand(put=0.00113, copy=0.00113, post=0.00113, list=0.00113,
                                          get=0.00003, head=0.00003, delete=0.0),
                per_gb={"put": 0.0032, "get": 0.0006},
            ),
            "sqs": _SQS,
        }),
        **_NAT,
    ),
    # Cloudflare R2 Standard storage (https://developers.cloudflare.com/r2/pricing/): Class A operations
    # (PutObject, CopyObject, ListObjects, multipart uploads) $4.50 per million; Class B (GetObject,
    # HeadObject, HeadBucket) $0.36 per million; DeleteObject free; no egress charge. The page names
    # DeleteObject, not the DeleteObjects batch the agent sends: check a bill before trusting 'free'.
    # SQS and the NAT gateway stay at AWS's prices (a doorbell queue beside an R2 bucket).
    "cloudflare-r2": PriceTable(
        name="cloudflare-r2",
        description="Cloudflare R2 Standard storage, SQS in us-east-1 for any doorbell",
        services=MappingProxyType({
            "s3": ServicePrices(per_request=_per_million(put=4.50, copy=4.50, post=4.50, list=4.50,
                                                         get=0.36, head=0.36, delete=0.0)),
            "sqs": _SQS,
        }),
        **_NAT,
    ),
})
DEFAULT_PRESET = "aws-s3-standard"

_TOP_KEYS = {"base", "name", "description", "nat_gateway", *OPERATIONS}
_SERVICE_KEYS = {"per_thousand", "per_million", "per_gb", "free_bytes_per_request", "chunk_bytes", "transfer_per_gb"}
_NAT_KEYS = {"per_hour": "nat_gateway_per_hour", "per_gb": "nat_gateway_per_gb"}


def load_prices(name_or_path: str | Path) -> PriceTable:
    """A preset by name, or a TOML file of overrides on top of one (its 'base', default aws-s3-standard).

    A file looks like this; every key is optional, and prices are in dollars:

        base = "aws-s3-standard"
        name = "s3 from outside AWS"
        [s3.per_thousand]            # per 1,000 requests, by operation ("*": every other one)
        list = 0.005
        [s3.transfer_per_gb]         # "in", "out"
        out = 0.09
        [s3]                         # also: per_million, per_gb (by operation), chunk_bytes
        free_bytes_per_request = 0
        [sqs.per_million]
        "*" = 0.40
        [nat_gateway]
        per_hour = 0.045
        per_gb = 0.045
    """
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        return PRESETS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise PriceError(f"no price preset or file named {str(name_or_path)!r} (presets: {', '.join(PRESETS)})")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise PriceError(f"{path}: {error}") from None
    try:
        return override(data, default_name=path.stem)
    except PriceError as error:
        raise PriceError(f"{path}: {error}") from None


def override(data: Mapping[str, Any], default_name: str = "custom") -> PriceTable:
    """A preset (data's 'base') with the prices data gives, checked key by key."""
    _known(data, _TOP_KEYS, "")
    base_name = data.get("base", DEFAULT_PRESET)
    if base_name not in PRESETS:
        raise PriceError(f"base: unknown preset {base_name!r} (presets: {', '.join(PRESETS)})")
    base = PRESETS[base_name]
    services = dict(base.services)
    for service in OPERATIONS:
        if service in data:
            services[service] = _service(service, _table(data[service], service), services[service])
    nat = _table(data.get("nat_gateway", {}), "nat_gateway")
    _known(nat, set(_NAT_KEYS), "nat_gateway.")
    return replace(
        base,
        name=_text(data, "name", default_name),
        description=_text(data, "description", f"{base.description}, with overrides"),
        services=MappingProxyType(services),
        **{field_name: _price(nat[key], f"nat_gateway.{key}") for key, field_name in _NAT_KEYS.items() if key in nat},
    )


def _service(service: str, data: Mapping[str, Any], base: ServicePrices) -> ServicePrices:
    _known(data, _SERVICE_KEYS, f"{service}.")
    per_request = dict(base.per_request)
    named: set[str] = set()
    for key, divisor in (("per_thousand", 1_000), ("per_million", 1_000_000)):
        for operation, value in _operations(service, data.get(key, {}), key).items():
            if operation in named:
                raise PriceError(f"{service}.{operation}: priced both per_thousand and per_million")
            named.add(operation)
            per_request[operation] = value / divisor
    per_gb = {**base.per_gb, **_operations(service, data.get("per_gb", {}), "per_gb")}
    transfer = _table(data.get("transfer_per_gb", {}), f"{service}.transfer_per_gb")
    _known(transfer, set(DIRECTIONS), f"{service}.transfer_per_gb.")
    return ServicePrices(
        per_request=MappingProxyType(per_request),
        per_gb=MappingProxyType(per_gb),
        free_bytes_per_request=_bytes(data, "free_bytes_per_request", service, base.free_bytes_per_request),
        chunk_bytes=_bytes(data, "chunk_bytes", service, base.chunk_bytes),
        transfer_per_gb=MappingProxyType({
            **base.transfer_per_gb,
            **{way: _price(value, f"{service}.transfer_per_gb.{way}") for way, value in transfer.items()},
        }),
    )


def _operations(service: str, value: object, key: str) -> dict[str, float]:
    table = _table(value, f"{service}.{key}")
    allowed = {*OPERATIONS[service], ANY} if key != "per_gb" else set(OPERATIONS[service])
    _known(table, allowed, f"{service}.{key}.")
    return {operation: _price(price, f"{service}.{key}.{operation}") for operation, price in table.items()}


def _known(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise PriceError(f"unknown key {where}{unknown[0]} (known here: {', '.join(sorted(allowed))})")


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PriceError(f"{where} must be a table, not {type(value).__name__}")
    return value


def _price(value: object, where: str) -> float:
    # bool is an int to Python, but 'true' is no price.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PriceError(f"{where} must be a price in dollars (a number, zero or more), not {value!r}")
    return float(value)


def _bytes(data: Mapping[str, Any], key: str, service: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PriceError(f"{service}.{key} must be a whole number of bytes, zero or more, not {value!r}")
    return value


def _text(data: Mapping[str, Any], key: str, default: str) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise PriceError(f"{key} must be a string, not {value!r}")
    return value
