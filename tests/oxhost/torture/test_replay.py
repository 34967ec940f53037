"""A logged ext4 round replays in process: same requests, same cut, same check."""
import hashlib

import numpy as np

from oxemu import Geometry
from oxhost.stack import open_stack
from oxhost.blocklog import BlockLog
from oxhost.torture.replay import replay_round

GEO = Geometry(nchannels=2, nluns=2, nblocks=16, npages=16)


def _round_log(path, volume: int) -> None:
    """What a daemon would log: whole and partial writes, zeroing, reads, flushes."""
    rng = np.random.default_rng(5)
    log = BlockLog(str(path))
    for i in range(40):
        off = int(rng.integers(0, volume // 1024 - 64)) * 1024
        log.write(off, rng.integers(0, 256, int(rng.integers(1, 48)) * 1024, dtype=np.uint8).tobytes())
        if i % 7 == 3:
            log.zero(off, 8192)
        if i % 5 == 4:
            log.flush()
        log.read(off, 4096)
    log.background()
    log.close()


def test_a_round_replays_to_its_cut_and_recovers_within_the_flush_contract(tmp_path):
    disk = tmp_path / "before.disk"
    st = open_stack(mode="pblk", disk=str(disk), geometry=GEO)
    size = st.blockdev.size
    st.blockdev.write(0, np.full(1 << 20, 7, dtype=np.uint8))
    st.close()
    digest = hashlib.sha256(disk.read_bytes()).hexdigest()
    log = tmp_path / "round.log"
    _round_log(log, size)

    whole = replay_round(str(disk), str(log), cut=10**6, mode="pblk")
    assert whole["failed_at"] is None and whole["problems"] == []
    cut = replay_round(str(disk), str(log), cut=40, mode="pblk")
    assert cut["failed_at"] is not None and cut["problems"] == []
    assert cut["records"] == whole["records"]
    assert hashlib.sha256(disk.read_bytes()).hexdigest() == digest      # the evidence stays as it was
