"""The ring of recently carried objects stays within its bounds and keeps the newest."""

from agent.recent import CarriedObject, RecentObjects


def carried(n: int, size: int = 10) -> CarriedObject:
    return CarriedObject(float(n), "in", f"k/{n}", bytes(size))


def test_ring_keeps_the_newest_within_count_and_bytes():
    ring = RecentObjects(max_objects=3, max_bytes=25)
    for n in range(5):
        ring.add(carried(n))
    assert [obj.key for obj in ring.snapshot()] == ["k/3", "k/4"]  # 30 bytes would pass 25
    ring.add(carried(9, size=100))  # larger than the whole ring: skipped, nothing forgotten
    assert [obj.key for obj in ring.snapshot()] == ["k/3", "k/4"]
    wide = RecentObjects(max_objects=3, max_bytes=1000)
    for n in range(5):
        wide.add(carried(n))
    assert [obj.key for obj in wide.snapshot()] == ["k/2", "k/3", "k/4"]
