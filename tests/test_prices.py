"""Price tables: presets checked against hand-worked bills, and TOML overrides with their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.prices import GB, PRESETS, PriceError, PriceTable, load_prices

KIB = 1024
DAY = 86_400


@pytest.fixture
def standard() -> PriceTable:
    return load_prices("aws-s3-standard")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


def test_an_idle_node_listing_twice_a_second_costs_86_cents_a_day(standard: PriceTable) -> None:
    lists_per_day = 2 * DAY
    assert lists_per_day == 172_800
    assert standard.requests("s3", "list", lists_per_day) == pytest.approx(0.864)
    assert standard.request("s3", "list") * lists_per_day == pytest.approx(0.864)


def test_s3_standard_request_prices(standard: PriceTable) -> None:
    assert standard.requests("s3", "put", 1_000) == pytest.approx(0.005)
    assert standard.requests("s3", "copy", 1_000) == pytest.approx(0.005)
    assert standard.requests("s3", "get", 1_000) == pytest.approx(0.0004)
    assert standard.requests("s3", "head", 1_000) == pytest.approx(0.0004)
    assert standard.requests("s3", "delete", 1_000_000) == 0.0
    # Payload size does not change an S3 Standard request's price, and in-region transfer is free.
    assert standard.request("s3", "put", 5 << 20) == standard.request("s3", "put")
    assert standard.transfer("s3", "out", 10 * GB) == 0.0


def test_sqs_bills_each_started_64_kib_chunk_as_a_request(standard: PriceTable) -> None:
    one = 0.40 / 1_000_000
    assert standard.request("sqs", "send") == pytest.approx(one)
    assert standard.request("sqs", "send", 64 * KIB) == pytest.approx(one)
    assert standard.request("sqs", "send", 64 * KIB + 1) == pytest.approx(2 * one)
    assert standard.request("sqs", "receive", 256 * KIB) == pytest.approx(4 * one)
    assert standard.requests("sqs", "receive", 1_000_000) == pytest.approx(0.40)
    # Every SQS action is a request at the same price.
    for operation in ("delete", "create", "get_url", "change_visibility"):
        assert standard.request("sqs", operation) == pytest.approx(one)


def test_s3_express_matches_the_faq_example() -> None:
    """The S3 FAQ: 1,000,000 PUTs and 9,000,000 GETs of 10 KB cost $1.13 + $0.27 in requests,
    $0.03 of upload and $0.05 of retrieval (the $2.58 total less $1.10 of storage)."""
    express = load_prices("aws-s3-express")
    puts = express.requests("s3", "put", 1_000_000, 1_000_000 * 10 * KIB)
    gets = express.requests("s3", "get", 9_000_000, 9_000_000 * 10 * KIB)
    assert puts == pytest.approx(1.13 + 10 / 1_048_576 * 1_000_000 * 0.0032)
    assert gets == pytest.approx(0.27 + 10 / 1_048_576 * 9_000_000 * 0.0006)
    assert puts + gets == pytest.approx(2.58 - 1.10, abs=0.005)


def test_express_can_charge_only_the_part_over_512_kib(tmp_path: Path) -> None:
    prices = load_prices(write(tmp_path, 'base = "aws-s3-express"\n[s3]\nfree_bytes_per_request = 524288\n'))
    assert prices.request("s3", "put", 100) == pytest.approx(0.00113 / 1_000)
    assert prices.request("s3", "put", 1 << 20) == pytest.approx(0.00113 / 1_000 + 0.5 / 1024 * 0.0032)
    assert prices.request("s3", "get", 1 << 20) == pytest.approx(0.00003 / 1_000 + 0.5 / 1024 * 0.0006)


def test_cloudflare_r2_classes() -> None:
    r2 = load_prices("cloudflare-r2")
    assert r2.requests("s3", "put", 1_000_000) == pytest.approx(4.50)
    assert r2.requests("s3", "list", 1_000_000) == pytest.approx(4.50)
    assert r2.requests("s3", "get", 1_000_000) == pytest.approx(0.36)
    assert r2.requests("s3", "head", 1_000_000) == pytest.approx(0.36)
    assert r2.requests("s3", "delete", 1_000_000) == 0.0
    assert r2.transfer("s3", "out", 1000 * GB) == 0.0


def test_nat_gateway(standard: PriceTable) -> None:
    assert standard.nat_gateway(24, 0) == pytest.approx(1.08)
    assert standard.nat_gateway(0, GB) == pytest.approx(0.045)
    # A month (730 h) and 500 GB: $32.85 + $22.50.
    assert standard.nat_gateway(730, 500 * GB) == pytest.approx(55.35)


def test_no_requests_cost_nothing(standard: PriceTable) -> None:
    assert standard.requests("s3", "put", 0) == 0.0


def test_a_file_overrides_some_prices_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, """
name = "from outside AWS"
[s3.per_thousand]
list = 0.0054
[s3.transfer_per_gb]
out = 0.09
[sqs.per_million]
send = 0.50
[nat_gateway]
per_gb = 0.05
""")
    prices = load_prices(path)
    assert prices.name == "from outside AWS"
    assert prices.requests("s3", "list", 1_000) == pytest.approx(0.0054)
    assert prices.requests("s3", "put", 1_000) == pytest.approx(0.005)
    assert prices.transfer("s3", "out", 10 * GB) == pytest.approx(0.90)
    assert prices.transfer("s3", "in", 10 * GB) == 0.0
    assert prices.requests("sqs", "send", 1_000_000) == pytest.approx(0.50)
    assert prices.requests("sqs", "receive", 1_000_000) == pytest.approx(0.40)
    assert prices.nat_gateway(1, GB) == pytest.approx(0.045 + 0.05)
    assert PRESETS["aws-s3-standard"].requests("s3", "list", 1_000) == pytest.approx(0.005)


def test_a_file_names_itself_after_its_stem_by_default(tmp_path: Path) -> None:
    assert load_prices(write(tmp_path, 'base = "cloudflare-r2"\n')).name == "prices"


@pytest.mark.parametrize(("text", "message"), [
    ("colour = 1\n", "unknown key colour"),
    ("[s3]\nper_thosand = {}\n", "unknown key s3.per_thosand"),
    ("[s3.per_thousand]\ngets = 1\n", "unknown key s3.per_thousand.gets"),
    ("[s3.per_gb]\n'*' = 1\n", "unknown key s3.per_gb.*"),
    ("[s3.per_thousand]\nput = -1\n", "s3.per_thousand.put must be a price"),
    ("[s3.per_thousand]\nput = 'cheap'\n", "s3.per_thousand.put must be a price"),
    ("[s3.per_thousand]\nput = true\n", "s3.per_thousand.put must be a price"),
    ("[s3.per_thousand]\nput = nan\n", "s3.per_thousand.put must be a price"),
    ("[s3.per_thousand]\nput = 1\n[s3.per_million]\nput = 1\n", "priced both"),
    ("[s3]\nchunk_bytes = 1.5\n", "s3.chunk_bytes must be a whole number"),
    ("[s3.transfer_per_gb]\nsideways = 1\n", "unknown key s3.transfer_per_gb.sideways"),
    ("[nat_gateway]\nper_day = 1\n", "unknown key nat_gateway.per_day"),
    ("s3 = 5\n", "s3 must be a table"),
    ("base = 'aws-glacier'\n", "unknown preset 'aws-glacier'"),
    ("name = 5\n", "name must be a string"),
    ("[s3\n", "prices.toml"),
])
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PriceError, match=message.replace("*", r"\*")):
        load_prices(write(tmp_path, text))


def test_an_unknown_name_lists_the_presets() -> None:
    with pytest.raises(PriceError, match="presets: aws-s3-standard, aws-s3-express, cloudflare-r2"):
        load_prices("aws-s3-glacier")


def test_unknown_services_operations_and_directions_are_errors(standard: PriceTable) -> None:
    with pytest.raises(PriceError, match="unknown service 'dynamodb'"):
        standard.request("dynamodb", "put")
    with pytest.raises(PriceError, match="unknown s3 operation 'gets'"):
        standard.request("s3", "gets")
    with pytest.raises(PriceError, match="unknown s3 operation 'gets'"):
        standard.requests("s3", "gets", 0)
    with pytest.raises(PriceError, match="unknown direction"):
        standard.transfer("s3", "up", 1)
    with pytest.raises(PriceError, match="negative"):
        standard.request("s3", "put", -1)
