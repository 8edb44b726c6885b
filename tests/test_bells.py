"""Authenticated bells and bounded work per bell: one test per rule of agent.bell_triage and agent.sealing.bells."""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest
import ulid
from hypothesis import given, settings
from hypothesis import strategies as st
from packets_factory import A, B, udp
from test_seal import KEYS, node, write_peers

from agent import bell_triage, wire
from agent.bell_triage import FLOOD_BELLS, FLOOD_QUIET, PER_SOURCE, BellTriage
from agent.config import DEFAULT_NETWORK
from agent.heartbeat import Heartbeat
from agent.inbox import Inbox
from agent.ingress import Ingress, IngressSettings
from agent.metrics import Stats
from agent.sealing import Peers, Sealer
from agent.sealing.bells import BellAuthenticator
from agent.transport import Guard, GuardedBucket, MemoryBucket
from agent.transport.base import Bell
from agent.transport.bell_format import BellMessage, decode_bells, decode_message, encode_bells

C = ipaddress.IPv6Address("fd5e:59b8:f71d:9a3e::c")
NOW = 1_800_000_000.0


def key(destination: ipaddress.IPv6Address = B, at: float = NOW, prefix: str = "") -> str:
    return f"{wire.inbox(prefix, destination)}{ulid.ULID.from_timestamp(at)}"


# The message format.

def test_a_revision_2_message_round_trips_and_revision_1_still_reads():
    bells = (Bell(key(), 104), Bell(key(at=NOW + 0.001), 7))
    text = encode_bells(bells, A, b"m" * 16)
    assert json.loads(text)["v"] == 1  # a receiver of revision 1 reads its bells, ignoring 'from' and 'mac'
    assert decode_message(text) == BellMessage(bells, A, b"m" * 16)
    assert decode_bells(text) == list(bells)
    old = decode_message(encode_bells(bells))
    assert (old.sender, old.mac) == (None, b"")


@pytest.mark.parametrize("extra", [{"from": "not an address"}, {"from": 7}, {"from": "1.2.3.4"},
                                   {"mac": "####"}, {"mac": "AAAA"}, {"mac": 5}])
def test_a_message_whose_new_fields_are_not_what_they_say_is_refused(extra):
    with pytest.raises(ValueError):
        decode_message(json.dumps({"v": 1, "bells": [[key(), 1]], **extra}))


@settings(max_examples=300, deadline=None)
@given(st.builds(
    lambda bells, sender, mac: json.dumps({"v": 1, "bells": bells, "from": sender, "mac": mac}),
    st.lists(st.tuples(st.text(max_size=60), st.integers(min_value=-2, max_value=1 << 64)).map(list), max_size=20),
    st.one_of(st.none(), st.text(max_size=50), st.ip_addresses(v=6).map(str), st.integers()),
    st.one_of(st.none(), st.text(max_size=40), st.binary(min_size=16, max_size=16).map(
        lambda raw: __import__("base64").b64encode(raw).decode()))))
def test_any_message_with_the_new_fields_is_bells_from_an_address_or_refused(text):
    try:
        message = decode_message(text)
    except ValueError:
        return
    assert message.sender is None or isinstance(message.sender, ipaddress.IPv6Address)
    assert message.mac == b"" or len(message.mac) == 16
    assert all(0 <= bell.size < 1 << 63 for bell in message.bells)


# The MAC.

@pytest.fixture
def sealers(tmp_path: Path) -> tuple[BellAuthenticator, BellAuthenticator, BellAuthenticator]:
    """A and B are peers; C knows them both (a member), and they know C."""
    return (BellAuthenticator(node(tmp_path, "a", A, {B: ["b"], C: ["c"]})),
            BellAuthenticator(node(tmp_path, "b", B, {A: ["a"], C: ["c"]})),
            BellAuthenticator(node(tmp_path, "c", C, {A: ["a"], B: ["b"]})))


def test_a_bell_signed_by_a_peer_verifies_and_any_change_does_not(sealers):
    a, b, c = sealers
    bells = (Bell(key(), 104),)
    message = BellMessage(bells, A, a.sign(B, bells))
    assert b.verify(message, B)
    assert not b.verify(BellMessage((Bell(key(), 105),), A, message.mac), B)  # size changed
    assert not b.verify(BellMessage(bells, C, message.mac), B)  # another member claims it
    assert not b.verify(BellMessage(bells, A, b""), B)  # no MAC: an old sender, or anyone
    assert not c.verify(message, C)  # moved into another member's queue


def test_a_stranger_cannot_sign_and_a_peer_with_a_retired_key_still_verifies(tmp_path, sealers):
    _, b, _ = sealers
    bells = (Bell(key(), 1),)
    stranger = BellAuthenticator(Sealer(KEYS["a2"], A, Peers(write_peers(tmp_path / "s.toml", {B: ["b"]}))))
    assert not b.verify(BellMessage(bells, A, stranger.sign(B, bells)), B)
    (tmp_path / "rotating").mkdir()
    rotating = BellAuthenticator(node(tmp_path / "rotating", "b", B, {A: ["a2", "a"]}))  # A: a new key, an old
    signer = BellAuthenticator(node(tmp_path / "rotating", "a", A, {B: ["b"]}))
    assert rotating.verify(BellMessage(bells, A, signer.sign(B, bells)), B)
    assert BellAuthenticator(node(tmp_path, "a", C, {})).sign(B, bells) == b""  # B is no peer: unsigned


# The triage.

class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def triage(require_proof: bool = True, clock: Clock | None = None,
           reports: list[str] | None = None) -> tuple[BellTriage, Stats, Clock]:
    clock = clock or Clock()
    stats = Stats()
    inbox = Inbox(MemoryBucket(), B, "", max_age=10.0, skew=2.0, clock=clock)
    made = BellTriage("", inbox.judge, stats, require_proof=require_proof, budget_bytes=16 << 20, clock=clock,
                      report=(reports.append if reports is not None else None))
    return made, stats, clock


def unknown(_key: str) -> bool:
    return False


def test_a_key_its_sender_could_not_have_written_is_bogus_and_not_fetched():
    judged, _, _ = triage()
    plan = judged.plan([Bell(key(A), 1, A, True), Bell("nonsense", 1, None, False)], unknown)
    assert plan.fetch == [] and plan.refuse == [] and plan.dropped == {"bogus_bell": 2}


def test_a_key_outside_the_window_is_refused_unread_whoever_rang():
    judged, _, _ = triage()
    plan = judged.plan([Bell(key(at=NOW - 60), 1, A, True), Bell(key(at=NOW + 60), 1, None, False)], unknown)
    assert plan.fetch == [] and [reason for _, reason, _ in plan.refuse] == ["stale", "future"]


def test_a_sealed_receiver_fetches_nothing_unverified_and_lists_instead():
    judged, _, _ = triage(require_proof=True)
    plan = judged.plan([Bell(key(), 1, A, False), Bell(key(at=NOW + 0.001), 1, None, False)], unknown)
    assert plan.fetch == [] and plan.dropped == {"unverified_bell": 2} and plan.list_soon


def test_an_unsealed_receiver_fetches_unproven_bells_within_their_budget():
    judged, _, _ = triage(require_proof=False)
    keys = [key(at=NOW - n / 1000) for n in range(PER_SOURCE + 4)]
    plan = judged.plan([Bell(k, 100) for k in keys], unknown)
    assert [bell.key for bell, _ in plan.fetch] == keys[:PER_SOURCE]
    assert plan.list_soon and not plan.dropped  # over budget: left to a listing, not lost
    judged.finished(keys[0], found=True)
    assert [bell.key for bell, _ in judged.plan([Bell(keys[-1], 100)], unknown).fetch] == [keys[-1]]


def test_a_source_may_hold_half_the_fetch_budget_in_bytes_at_most():
    judged, _, _ = triage(require_proof=False)
    plan = judged.plan([Bell(key(), 7 << 20), Bell(key(at=NOW - 0.001), 2 << 20)], unknown)
    assert len(plan.fetch) == 1 and plan.list_soon


def test_each_proven_sender_has_a_budget_of_its_own_and_goes_first():
    judged, _, _ = triage()
    unproven_first = [Bell(key(at=NOW - n / 1000), 1, C, True) for n in range(PER_SOURCE + 1)]
    plan = judged.plan([*unproven_first, Bell(key(at=NOW - 0.5), 1, A, True)], unknown)
    assert len(plan.fetch) == PER_SOURCE + 1  # C's over-budget bell is left to listing; A's is fetched
    open_triage, _, _ = triage(require_proof=False)
    plan = open_triage.plan([Bell(key(at=NOW - 0.1), 1), Bell(key(at=NOW - 0.2), 1, A, True)], unknown)
    assert [bell.sender for bell, _ in plan.fetch] == [A, None]  # the proven sender's key first


def test_a_key_rung_twice_or_already_known_is_fetched_once():
    judged, _, _ = triage(require_proof=False)
    k = key()
    assert len(judged.plan([Bell(k, 1), Bell(k, 1)], unknown).fetch) == 1
    assert judged.plan([Bell(k, 1)], unknown).fetch == []  # still in flight
    judged.finished(k, found=False)
    assert judged.plan([Bell(k, 1)], unknown).fetch == []  # found missing: ringing it again costs no GET
    assert judged.plan([Bell(key(at=NOW - 1), 1)], lambda _: True).fetch == []


def test_a_missing_key_is_tried_again_only_while_its_put_could_be_in_flight():
    judged, stats, clock = triage()
    for _ in range(5):
        stats.request("s3", "put", 0.03)
    assert judged.retry_after(key(at=NOW - 0.5)) is None  # its PUT (twice 30 ms) was over long ago
    waiting = key(at=NOW - 0.02)
    assert judged.retry_after(waiting) == pytest.approx(0.04)
    assert judged.retry_after(key(at=NOW - 0.01)) is None  # one waits at a time: the fetchers never all wait
    judged.finished(waiting, found=False)
    assert judged.retry_after(key(at=NOW + 1.5)) == pytest.approx(0.06)  # a clock ahead waits one PUT, no more
    fresh, _, _ = triage(clock=clock)  # nothing measured: a PUT is assumed to take 50 ms
    assert fresh.retry_after(key(at=NOW - 0.01)) == pytest.approx(bell_triage.PUT_ALLOWANCE[0] - 0.01)


def test_a_flood_is_said_once_left_to_listing_while_it_lasts_and_ends():
    reports: list[str] = []
    judged, _, clock = triage(require_proof=False, reports=reports)
    keys = [key(at=NOW - n / 1000) for n in range(900)]
    plan = judged.plan([Bell(k, 100) for k in keys], unknown)
    assert len(plan.fetch) == PER_SOURCE and judged.flooding()
    assert plan.dropped == {"unverified_bell": 900 - PER_SOURCE - FLOOD_BELLS}  # counted once it is a flood
    for bell, _ in plan.fetch:
        judged.finished(bell.key, found=False)
    later = judged.plan([Bell(key(at=NOW - 1 - n / 1000), 100) for n in range(900)], unknown)
    assert later.fetch == [] and later.list_soon and later.dropped == {"unverified_bell": 900}
    assert len(reports) == 1 and "flood" in reports[0]
    clock.now += FLOOD_QUIET + 1
    assert not judged.flooding() and "over" in reports[-1]
    assert len(judged.plan([Bell(key(at=clock.now), 100)], unknown).fetch) == 1


def test_a_proven_member_ringing_missing_keys_floods_alone():
    judged, _, _ = triage()
    for n in range(FLOOD_BELLS // PER_SOURCE + 1):
        plan = judged.plan([Bell(key(at=NOW - n - m / 1000), 1, C, True) for m in range(PER_SOURCE)], unknown)
        for bell, _ in plan.fetch:
            judged.finished(bell.key, found=False)
    assert judged.flooding(C) and not judged.flooding(A)
    assert len(judged.plan([Bell(key(at=NOW - 9), 1, A, True)], unknown).fetch) == 1


# The receive path: one GET per bell for a missing key, counted.

def test_a_rung_key_that_never_was_costs_one_get_and_is_counted():
    stats = Stats()
    bucket = GuardedBucket(MemoryBucket(), Guard(stats))
    ingress = Ingress(bucket, lambda _: None, stats, Heartbeat(0.01, 1.0),
                      IngressSettings(B, ipaddress.IPv6Network(DEFAULT_NETWORK), 1500))
    real = key(at=time.time())
    bucket.put(real, udp(A, B))
    ingress.offer_bells([Bell(key(at=time.time() - 1), 40), Bell(real, len(udp(A, B)))])
    ingress.drain()
    assert stats.requests[("s3", "get")] == 2 and stats.dropped["missing_object"] == 1
