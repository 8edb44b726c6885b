"""The ledger of a key's life and its journal: each rule, and any interleaving delivering a key at most once."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from agent.journal import Journal, JournalError, Remembered, journal_name
from agent.ledger import Claim, Ledger

A = ipaddress.IPv6Address("fd5e::a")
B = ipaddress.IPv6Address("fd5e::b")
WINDOW = 14.0


class Clocks:
    """A wall clock and a monotonic clock that tests move by hand, apart or together."""

    def __init__(self) -> None:
        self.wall = 1_700_000_000.0
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def ledger(clocks: Clocks, journal: Journal | None = None, **bounds: int) -> Ledger:
    return Ledger(WINDOW, journal=journal, clock=lambda: clocks.wall, monotonic=lambda: clocks.mono, **bounds)


def test_a_key_is_claimed_once_and_known_while_in_hand():
    book = ledger(Clocks())
    assert book.claim("k", 0) is Claim.FETCH
    assert book.claim("k", 0) is Claim.KNOWN  # listed again, or rung, while its GET runs


def test_a_listing_between_taking_and_writing_does_not_fetch_again():
    """The duplicate seen under load: handled is recorded before the first packet is written."""
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("k", clocks.wall)
    assert book.deliverable("k", None) == ""
    assert book.claim("k", clocks.wall) is Claim.KNOWN
    assert book.deliverable("k", None) == "replayed"


def test_a_deleted_key_listed_again_is_rechecked_once():
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("k", clocks.wall)
    book.deliverable("k", A)
    book.deleted(["k"])
    assert book.claim("k", clocks.wall) is Claim.RECHECK
    assert book.claim("k", clocks.wall) is Claim.KNOWN
    book.recheck_done("k", put_again=True)  # a replay: refused and deleted again
    assert book.claim("k", clocks.wall) is Claim.KNOWN
    book.deleted(["k"])
    assert book.claim("k", clocks.wall) is Claim.RECHECK
    book.recheck_done("k", put_again=False)  # an old listing: the object was not there
    assert book.claim("k", clocks.wall) is Claim.RECHECK


def test_a_rung_key_never_there_is_forgotten_and_a_failed_get_tried_a_bounded_number_of_times():
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("rung", clocks.wall)
    book.release("rung")
    assert book.claim("rung", clocks.wall) is Claim.FETCH

    book.claim("flaky", clocks.wall - 1)
    retried = 0
    while book.fetch_failed("flaky"):
        retried += 1
        assert book.failed_since() == clocks.wall - 1  # the next listing starts before it
        assert book.claim("flaky", clocks.wall - 1) is Claim.FETCH
    assert retried == 4
    book.refused("flaky", clocks.wall - 1)
    assert book.claim("flaky", clocks.wall - 1) is Claim.KNOWN
    assert book.failed_since() is None


def test_given_up_keys_are_never_handled_again():
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("stuck", clocks.wall)
    book.refused("stuck", clocks.wall)
    book.given_up("stuck")
    clocks.advance(10 * WINDOW)
    assert book.claim("stuck", clocks.wall) is Claim.KNOWN


def test_handled_keys_are_forgotten_after_the_window_on_the_monotonic_clock():
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("k", clocks.wall)
    book.deliverable("k", None)
    clocks.wall += 3600  # the wall clock jumps forward an hour: nothing is forgotten early
    assert book.claim("k", clocks.wall) is Claim.KNOWN
    clocks.mono += WINDOW + 0.001
    assert book.claim("k", clocks.wall) is Claim.FETCH
    assert len(book) == 1


def test_a_key_from_the_future_is_remembered_until_it_is_past_the_window():
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("ahead", clocks.wall + 5)
    book.deliverable("ahead", A)
    clocks.mono += WINDOW + 1
    assert book.claim("ahead", clocks.wall) is Claim.KNOWN
    clocks.mono += 5
    assert book.claim("ahead", clocks.wall) is Claim.FETCH


def test_each_sender_has_its_own_bound_and_a_full_one_is_refused_not_risked():
    clocks = Clocks()
    book = ledger(clocks, delivered_per_sender=3)
    for n in range(3):
        book.claim(f"a{n}", clocks.wall)
        assert book.deliverable(f"a{n}", A) == ""
    book.claim("a3", clocks.wall)
    assert book.deliverable("a3", A) == "replay_memory_full"
    assert book.full_senders == {A.compressed}
    book.claim("b0", clocks.wall)
    assert book.deliverable("b0", B) == ""  # one member's flood does not blackhole the others
    clocks.mono += WINDOW + 1
    book.claim("a4", clocks.wall)
    assert book.deliverable("a4", A) == ""  # the window passed: room again


def test_refused_keys_are_bounded_oldest_first():
    clocks = Clocks()
    book = ledger(clocks, refused_kept=10)
    for n in range(25):
        book.claim(f"r{n}", clocks.wall)
        book.refused(f"r{n}", clocks.wall)
    assert len(book) == 10
    assert book.claim("r24", clocks.wall) is Claim.KNOWN
    assert book.claim("r0", clocks.wall) is Claim.FETCH


def test_a_refused_key_deleted_and_put_again_is_judged_afresh():
    """Junk PUT first under a key a sender will use must not make the sender's object a 'replay'."""
    clocks = Clocks()
    book = ledger(clocks)
    book.claim("guessed", clocks.wall)
    book.refused("guessed", clocks.wall)
    assert book.claim("guessed", clocks.wall) is Claim.KNOWN  # its delete is on its way
    book.deleted(["guessed"])
    assert book.claim("guessed", clocks.wall) is Claim.FETCH
    assert book.deliverable("guessed", A) == ""


# The journal.


def test_what_was_delivered_is_refused_after_a_restart(tmp_path: Path):
    clocks = Clocks()
    path = tmp_path / "delivered.log"
    journal = Journal(path)
    book = ledger(clocks, journal)
    book.claim("sealed", clocks.wall)
    book.deliverable("sealed", A)
    book.claim("plain", clocks.wall)
    book.deliverable("plain", None)
    book.claim("refused", clocks.wall)
    book.refused("refused", clocks.wall)
    journal.close()

    clocks.advance(5)  # systemd's Restart=on-failure waits 5 s
    journal = Journal(path)
    after = ledger(clocks, journal)
    # Still listed: its delete may not have been made before the stop, so it is queued again, once.
    assert after.claim("sealed", clocks.wall) is Claim.DELETE
    assert after.claim("sealed", clocks.wall) is Claim.KNOWN
    assert after.claim("plain", clocks.wall) is Claim.DELETE
    assert after.claim("refused", clocks.wall) is Claim.FETCH  # never delivered: fetched and refused again
    after.deleted(["sealed"])
    assert after.claim("sealed", clocks.wall) is Claim.RECHECK
    journal.close()


def test_the_journal_forgets_what_is_past_the_window_and_skips_bad_lines(tmp_path: Path):
    clocks = Clocks()
    path = tmp_path / "delivered.log"
    path.write_text(
        f"{clocks.wall + 3:.3f} fd5e::a live\n"
        f"{clocks.wall - 1:.3f} - gone\n"
        "garbage\n"
        f"{clocks.wall + 3:.3f} not-an-address other\n"
        f"{clocks.wall + 9e9:.3f} - far\n"  # a clock set back: kept no longer than twice the window
        + "x" * 10_000 + "\n"
    )
    journal = Journal(path)
    book = ledger(clocks, journal)
    assert book.claim("live", clocks.wall) is Claim.DELETE
    assert book.claim("gone", clocks.wall) is Claim.FETCH
    assert book.claim("other", clocks.wall) is Claim.FETCH
    assert book.claim("far", clocks.wall) is Claim.DELETE
    clocks.mono += 2 * WINDOW + 0.001
    assert book.claim("far", clocks.wall) is Claim.FETCH
    assert path.read_text().count("\n") == 2  # rewritten with what is live
    journal.close()


def test_the_journal_stays_within_twice_what_is_live(tmp_path: Path):
    clocks = Clocks()
    path = tmp_path / "delivered.log"
    journal = Journal(path)
    book = ledger(clocks, journal)
    for n in range(20_000):  # 1,000 objects a second for 20 s: about 14,000 live at any time
        clocks.advance(0.001)
        book.claim(f"k{n}", clocks.wall)
        book.deliverable(f"k{n}", A)
    lines = path.read_text().count("\n")
    assert lines <= 2 * 14_005
    journal.close()
    reopened = Journal(path)
    assert len(reopened.load(clocks.wall)) <= 14_005  # the window, give or take rounding to a millisecond
    reopened.close()


def test_two_agents_of_one_node_cannot_share_a_journal(tmp_path: Path):
    first = Journal(tmp_path / "delivered.log")
    with pytest.raises(JournalError, match="another agent of this node is running"):
        Journal(tmp_path / "delivered.log")
    first.close()
    Journal(tmp_path / "delivered.log").close()


def test_a_journal_that_cannot_be_written_names_the_fix(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(JournalError, match="--state-dir"):
        Journal(blocker / "delivered.log")


def test_journal_names_keep_inboxes_apart():
    names = {journal_name("b", "", A), journal_name("b", "", B), journal_name("b", "net/", A),
             journal_name("c", "", A)}
    assert len(names) == 4
    assert all("/" not in name for name in names)


def test_a_line_round_trips_with_a_prefix_holding_spaces(tmp_path: Path):
    journal = Journal(tmp_path / "delivered.log")
    journal.append(Remembered("my net/fd5e::a/01J", A, 2e9), list)
    journal.close()
    again = Journal(tmp_path / "delivered.log")
    assert again.load(1e9) == [Remembered("my net/fd5e::a/01J", A, 2e9)]
    again.close()


# Any interleaving.

KEYS = st.sampled_from([f"key{n}" for n in range(4)])


class KeyLives(RuleBasedStateMachine):
    """Listings, bells, GETs finishing every way, deliveries, deletes and restarts, in any order."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        self.folder = tempfile.TemporaryDirectory()
        self.path = Path(self.folder.name) / "delivered.log"
        self.clocks = Clocks()
        self.journal = Journal(self.path)
        self.book = ledger(self.clocks, self.journal)
        self.fetching: set[str] = set()
        self.rechecking: set[str] = set()
        self.delivered: dict[str, int] = {}

    def teardown(self) -> None:
        self.journal.close()
        self.folder.cleanup()

    @rule(key=KEYS)
    def listed_or_rung(self, key: str) -> None:
        claim = self.book.claim(key, self.clocks.wall)
        if claim is Claim.FETCH:
            assert key not in self.fetching
            self.fetching.add(key)
        elif claim is Claim.RECHECK:
            self.rechecking.add(key)

    @precondition(lambda self: self.fetching)
    @rule(data=st.data())
    def fetched_and_delivered(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.fetching)))
        self.fetching.discard(key)
        if self.book.deliverable(key, A) == "":
            self.delivered[key] = self.delivered.get(key, 0) + 1

    @precondition(lambda self: self.fetching)
    @rule(data=st.data(), how=st.sampled_from(["missing", "failed", "refused"]))
    def fetched_otherwise(self, data: st.DataObject, how: str) -> None:
        key = data.draw(st.sampled_from(sorted(self.fetching)))
        self.fetching.discard(key)
        if how == "missing":
            self.book.release(key)
        elif how == "failed":
            if not self.book.fetch_failed(key):
                self.book.refused(key, self.clocks.wall)
        else:
            self.book.refused(key, self.clocks.wall)

    @precondition(lambda self: self.rechecking)
    @rule(data=st.data(), put_again=st.booleans())
    def rechecked(self, data: st.DataObject, put_again: bool) -> None:
        key = data.draw(st.sampled_from(sorted(self.rechecking)))
        self.rechecking.discard(key)
        self.book.recheck_done(key, put_again)

    @rule(key=KEYS)
    def delete_confirmed(self, key: str) -> None:
        self.book.deleted([key])

    @rule(key=KEYS)
    def delete_given_up(self, key: str) -> None:
        self.book.given_up(key)
        self.fetching.discard(key)
        self.rechecking.discard(key)

    @rule(seconds=st.floats(0, 1))
    def time_passes(self, seconds: float) -> None:
        self.clocks.advance(seconds)  # never past the window: within it, a key must not come twice

    @rule()
    def restart(self) -> None:
        self.journal.close()
        self.journal = Journal(self.path)
        self.book = ledger(self.clocks, self.journal)
        self.fetching.clear()
        self.rechecking.clear()

    @invariant()
    def delivered_at_most_once(self) -> None:
        assert all(count == 1 for count in self.delivered.values()), self.delivered


KeyLives.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_any_interleaving_delivers_a_key_at_most_once = KeyLives.TestCase
