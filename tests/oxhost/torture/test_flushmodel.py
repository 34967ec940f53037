"""The flush oracle of the ext4 rounds: the disk contract, sector by sector."""
import pytest

from oxhost.blocklog import BlockLog
from oxhost.torture.flushmodel import SECTOR, FlushModel


def _vol(*fills: int) -> bytes:
    return b"".join(bytes([f]) * SECTOR for f in fills)


@pytest.fixture
def model(tmp_path):
    """(model, log) over a volume image, as a campaign and a daemon hold them."""
    logs = []

    def make(image: bytes):
        path = str(tmp_path / "w.log")
        m = FlushModel(path, 0)
        m.adopt(image)
        logs.append(BlockLog(path))
        return m, logs[-1]
    yield make
    for log in logs:
        log.close()


def test_a_sector_may_hold_its_flushed_version_or_any_written_since(model):
    m, log = model(_vol(0, 0, 0))
    log.write(0, _vol(1))
    log.flush()
    log.write(0, _vol(2))
    log.write(0, _vol(3))
    for s0 in (1, 2, 3):
        assert m.check(_vol(s0, 0, 0)) == []


def test_a_sector_older_than_its_last_flush_is_reported(model):
    m, log = model(_vol(0, 0, 0))
    log.write(SECTOR, _vol(1))
    log.flush()
    log.write(SECTOR, _vol(2))
    log.flush()
    assert m.check(_vol(0, 2, 0)) == []
    (bad,) = m.check(_vol(0, 1, 0))
    assert bad.startswith("sector 1 holds an older version (written before flush 1 of 2")
    (bad,) = m.check(_vol(0, 0, 0))
    assert bad.startswith("sector 1 holds what it held at the mount")
    (bad,) = m.check(_vol(0, 9, 0))
    assert bad.startswith("sector 1 holds data never written there")


def test_zeroing_and_partial_writes_are_followed_byte_by_byte(model):
    m, log = model(_vol(7, 7))
    log.write(SECTOR + 1024, b"\x09" * 1024)       # an ext4 1 KiB block inside sector 1
    log.zero(0, SECTOR)
    log.flush()
    want = bytearray(_vol(0, 7))
    want[SECTOR + 1024:SECTOR + 2048] = b"\x09" * 1024
    assert m.check(bytes(want)) == []
    assert len(m.check(_vol(7, 7))) == 2             # neither sector may go back


def test_a_clean_stop_makes_everything_durable_and_empties_the_log(model, tmp_path):
    m, log = model(_vol(0))
    log.write(0, _vol(5))
    m.stopped_cleanly()
    assert (tmp_path / "w.log").stat().st_size == 0
    assert m.check(_vol(5)) == []
    assert len(m.check(_vol(0))) == 1


def test_a_failed_write_is_not_made_durable_by_a_later_flush(model):
    # after a power cut a flush of an empty buffer succeeds; the write that failed before it
    # was never acknowledged, so the sector may hold either version, and no other
    m, log = model(_vol(1, 1))
    log.write(0, _vol(2, 2))
    log.failed()
    log.flush()
    assert m.check(_vol(1, 1)) == []
    assert m.check(_vol(2, 1)) == []
    assert len(m.check(_vol(3, 1))) == 1
