"""AppNVM power-cut campaign (SPEC 8): many short rounds on one disk file, each ending in a
cut at a random media operation, with writes, overwrites, discards and flushes through the
plain NVMe block device. After every cut the device must start, keep every write a
completed FLUSH acknowledged (or a newer one), never show a discarded sector's older data,
never fail a program (none is injected, so a failure is a recovery bug) and never lose a
good block. At the end the whole volume must still be writable: no space leaked.

The CI run is short; the field report needed ~220 rounds. For a long run by hand:

    OX_POWER_CUT_ROUNDS=3000 OX_POWER_CUT_SEED=7 .venv/bin/python -m pytest -q \
        tests/oxemu/device/appnvm/test_power_cuts.py
"""
import io
import os
import re
import shutil

import numpy as np
import pytest

from oxemu import Faults, Geometry, Machine
from oxemu.device import PowerLost
from oxemu.device.appnvm.blocks import BState
from oxemu.volt import MediaStatus
from oxhost.driver import DriverError
from oxhost.nvme import NvmeBlockDevice, NvmeIoError

from .conftest import GEO, SECTOR, Nvme, check_map, stamp

ROUNDS = int(os.environ.get("OX_POWER_CUT_ROUNDS", "300"))
SEED = int(os.environ.get("OX_POWER_CUT_SEED", "1"))
RAM_MIB = 32


class Oracle:
    """What each LBA may read back. `durable[lba]` is the version a completed FLUSH (or the
    last verification after a restart) made durable, 0 = zeros; `pending[lba]` the versions
    (0 for a discard) issued since, any of which may have reached media."""

    def __init__(self, nlbas: int):
        self.durable = np.zeros(nlbas, dtype=np.int64)
        self.latest = np.zeros(nlbas, dtype=np.int64)
        self.pending: dict[int, set] = {}
        self.version = 0

    def issue(self, lbas, value) -> None:
        for lba in np.atleast_1d(lbas).tolist():
            self.pending.setdefault(lba, set()).add(value)
            self.latest[lba] = value

    def flushed(self) -> None:
        self.durable[:] = self.latest
        self.pending.clear()

    def check(self, got: np.ndarray) -> list[str]:
        bad = []
        for lba in np.flatnonzero(got != self.durable).tolist():
            if int(got[lba]) not in self.pending.get(lba, ()):
                bad.append(f"lba {lba}: read {int(got[lba])}, durable {int(self.durable[lba])}, "
                           f"pending {sorted(self.pending.get(lba, ()))}")
        return bad

    def settle(self, got: np.ndarray) -> None:
        """What the restarted device shows is what it has: the new durable state."""
        self.durable[:] = got
        self.latest[:] = got
        self.pending.clear()


_WORDS = SECTOR // 8
_MIX = np.uint64(0x9E37_79B9_7F4A_7C15)


def _fill(lbas, version) -> np.ndarray:
    """Sectors stamped [lba, version, then a word made of both] -- the conftest stamp's
    idea in 64-bit words, cheap enough for a few hundred rounds of full-volume checks."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.uint64))
    out = np.empty((lbas.size, _WORDS), dtype=np.uint64)
    out[:] = ((lbas * _MIX) ^ np.uint64(version))[:, None]
    out[:, 0] = lbas
    out[:, 1] = version
    return out.view(np.uint8).reshape(-1)


def _versions(data: np.ndarray, lbas) -> np.ndarray:
    """The version in each sector; 0 for zeros, -1 for anything that is not a whole
    sector of its own LBA."""
    d = data.view(np.uint64).reshape(-1, _WORDS)
    lbas = np.asarray(lbas, dtype=np.uint64)
    ver = d[:, 1]
    ok = (d[:, 0] == lbas) & (d[:, 2:] == ((lbas * _MIX) ^ ver)[:, None]).all(axis=1)
    zero = ~d.any(axis=1)
    return np.where(zero, 0, np.where(ok, ver.astype(np.int64), -1))


def _read_all(bdev, nlbas: int) -> np.ndarray:
    """The version of every sector; -2 - status where a sector cannot be read."""
    try:
        return _versions(bdev.read_sectors(0, nlbas), np.arange(nlbas))
    except NvmeIoError:
        pass
    out = np.empty(nlbas, dtype=np.int64)           # find the unreadable sectors one by one
    for lba in range(nlbas):
        try:
            out[lba] = _versions(bdev.read_sectors(lba, 1), [lba])[0]
        except NvmeIoError as e:
            out[lba] = -2 - e.status
    return out


def _started(machine, faults):
    """A machine whose device finished its start, or None when the cut came first (the
    device then never gets ready)."""
    try:
        m = machine(faults)
    except PowerLost:
        return None
    if not m.device.volt.powered:
        m.close()
        return None
    return m


def _workload(bdev, oracle: Oracle, rng, nops: int) -> None:
    """Random host I/O until nops are done or the power goes (DriverError)."""
    nlbas = bdev.nlbas
    for _ in range(nops):
        r = rng.random()
        if r < 0.62:                              # a write: single sectors, runs, or whole units
            k = int(rng.choice([1, 1, 1, 3, 8, 16, 64, 200]))
            lba = int(rng.integers(0, nlbas - k + 1))
            if rng.random() < 0.5:                # overwrite hot data: GC sees garbage
                lba = int(rng.integers(0, min(nlbas, 1024) - k + 1))
            oracle.version += 1
            lbas = np.arange(lba, lba + k)
            oracle.issue(lbas, oracle.version)
            bdev.write_sectors(lba, _fill(lbas, oracle.version))
        elif r < 0.80:
            k = int(rng.choice([1, 5, 40, 300]))
            lba = int(rng.integers(0, nlbas - k + 1))
            oracle.issue(np.arange(lba, lba + k), 0)
            bdev.discard_sectors(lba, k)
        else:
            bdev.flush()
            oracle.flushed()


def _campaign(tmp_path, rounds: int, seed: int) -> dict:
    disk = str(tmp_path / "cuts.disk")
    rng = np.random.default_rng(seed)
    oracle = None
    recovery_ops = 200
    stats = dict(rounds=0, recovery_cuts=0, clean_stops=0, cuts=0)

    def machine(faults=None):
        return Machine(volt=0, lnvm=0, disk=disk, geometry=GEO, ram_mib=RAM_MIB, faults=faults)

    good = None
    for rnd in range(rounds):
        stats["rounds"] += 1
        faults = Faults(seed=seed * 100_003 + rnd)
        if oracle is not None and rng.random() < 0.08:     # a cut while the device recovers
            faults.power_cut_after = int(rng.integers(1, recovery_ops + 1))
        m = _started(machine, faults)
        if m is None:
            stats["recovery_cuts"] += 1
            continue
        try:
            volt, ops = m.device.volt, m.device.mode
            faults.power_cut_after = None
            recovery_ops = max(1, volt.ops)
            assert volt.counters["program_fails"] == 0, f"round {rnd}: a program failed in recovery"
            check_map(ops)
            if good is None:
                good = ops.stats()["good_blocks"]
            assert ops.stats()["good_blocks"] == good, f"round {rnd}: a power cut cost a good block"
            bdev = NvmeBlockDevice.open(m)
            if oracle is None:
                oracle = Oracle(bdev.nlbas)
            got = _read_all(bdev, bdev.nlbas)
            bad = oracle.check(got)
            assert not bad, f"round {rnd}: {len(bad)} sectors wrong, e.g. " + "; ".join(bad[:5])
            oracle.settle(got)
            if rng.random() < 0.1:                 # now and then a clean stop
                nops = int(rng.integers(5, 60))
            else:                                  # mostly work until the plug is pulled
                faults.power_cut_after = volt.ops + int(rng.integers(1, 1200))
                nops = 100_000
            try:
                _workload(bdev, oracle, rng, nops)
                bdev.close()                       # a clean stop, unless the cut comes first
            except DriverError:
                pass
            assert volt.counters["program_fails"] == 0, f"round {rnd}: a program failed"
            if volt.powered:
                stats["clean_stops"] += 1
            else:
                stats["cuts"] += 1
        finally:
            m.close()

    # after the last cut: every sector as expected, and the whole volume writable again
    m = machine()
    try:
        ops = m.device.mode
        bdev = NvmeBlockDevice.open(m)
        got = _read_all(bdev, bdev.nlbas)
        bad = oracle.check(got)
        assert not bad, f"after the campaign: {len(bad)} sectors wrong, e.g. " + "; ".join(bad[:5])
        nlbas = bdev.nlbas
        for s in range(0, nlbas, 256):
            k = min(256, nlbas - s)
            bdev.write_sectors(s, _fill(np.arange(s, s + k), 1 << 40))
        bdev.flush()
        assert (_read_all(bdev, nlbas) == 1 << 40).all()
        st = ops.stats()
        assert st["good_blocks"] == good and st["retired_blocks"] == 0 and st["program_fails"] == 0
        check_map(ops)
        stats.update(free_blocks=st["free_blocks"], gc_victims=st["gc_victims"], erases=st["erases"],
                     checkpoints=st["checkpoints"])
        bdev.close()
    finally:
        m.close()
    return stats


def test_power_cut_campaign_with_discards_never_loses_data_or_blocks(tmp_path):
    """The field report: hundreds of cuts on one disk, discards included, no fault injected
    but the cuts; the device must come back every time, whole and writable."""
    stats = _campaign(tmp_path, ROUNDS, SEED)
    assert stats["cuts"] > ROUNDS * 3 // 4
    print(f"\npower-cut campaign: {stats}")


# ---------------------------------------------------------------- cuts at a chosen operation
def _machine(disk, **kw):
    return Machine(volt=0, lnvm=0, disk=disk, geometry=GEO, ram_mib=RAM_MIB, **kw)


def _media_ops(disk, workload) -> list[tuple]:
    """The media operations (type, ch, lun, blk, pl, pg) a start plus `workload` issue, in
    order, read from the debug trace: power_cut_after=i interrupts ops[i] (0-based)."""
    trace = io.StringIO()
    m = _machine(disk, debug=1, trace_stream=trace)
    try:
        workload(NvmeBlockDevice.open(m))
    finally:
        m.close()
    return [tuple(int(x) for x in (t, *rest)) for t, *rest in _MMGR.findall(trace.getvalue())]


_MMGR = re.compile(r"MMGR_CMD type: 0x([0-9a-f]+) submitted to VOLT\.\n\s+Channel: (\d+), lun: (\d+), "
                   r"blk: (\d+), pl: (\d+), pg: (\d+)\]")
_MMGR_TYPE = {"read": 0x1, "program": 0x3, "erase": 0x7}


def _cut_at(disk, workload, cut: int) -> None:
    """Run start + workload again on the same media, the plug pulled after `cut` operations."""
    m = _machine(disk, faults=Faults(power_cut_after=cut))
    try:
        with pytest.raises(DriverError):
            workload(NvmeBlockDevice.open(m))
        assert not m.device.volt.powered
    finally:
        m.close()


def _twin(tmp_path, disk) -> str:
    """A copy of a stopped disk file: one copy is traced, the other cut."""
    twin = str(tmp_path / "twin.disk")
    shutil.copyfile(disk, twin)
    return twin


def _prepared(tmp_path) -> tuple[str, np.ndarray]:
    """A disk with 20 blocks' worth of LBAs written twice (the first copies are garbage,
    their blocks hold nothing valid) and flushed, then stopped cleanly. Returns the disk
    and the version of every LBA (2)."""
    disk = str(tmp_path / "ox.disk")
    m = _machine(disk)
    try:
        bdev = NvmeBlockDevice.open(m)
        n = 20 * m.device.mode.addr.block_secs
        for v in (1, 2):
            for s in range(0, n, 256):
                bdev.write_sectors(s, _fill(np.arange(s, s + 256), v))
        bdev.close()
    finally:
        m.close()
    return disk, np.full(n, 2)


def _check_after_cut(disk, want: np.ndarray) -> None:
    """Restart, read back, then write the whole volume twice over: nothing may fail."""
    m = _machine(disk)
    try:
        ops, volt = m.device.mode, m.device.volt
        good = ops.stats()["good_blocks"]
        bdev = NvmeBlockDevice.open(m)
        assert (_read_all(bdev, want.size) == want).all()
        nlbas = bdev.nlbas
        for v in (3, 4):
            for s in range(0, nlbas, 256):
                k = min(256, nlbas - s)
                bdev.write_sectors(s, _fill(np.arange(s, s + k), v))
        bdev.flush()
        assert (_read_all(bdev, nlbas) == 4).all()
        assert volt.counters["program_fails"] == 0, "a program failed after recovery"
        st = ops.stats()
        assert st["good_blocks"] == good and st["retired_blocks"] == 0
        check_map(ops)
        bdev.close()
    finally:
        m.close()


def _write_some(bdev) -> None:
    """New data on LBAs beyond the prepared ones: the FTL takes (and erases) free blocks."""
    base = 20 * 128
    for s in range(base, base + 2048, 64):
        bdev.write_sectors(s, _fill(np.arange(s, s + 64), 7))
    bdev.flush()


def test_a_cut_between_the_plane_erases_leaves_a_block_to_erase_not_a_bad_one(tmp_path):
    """SPEC 8: a cut after plane 0 of a block is erased and before plane 1 is. Recovery
    must see plane 1 still holding data and erase the block again before use -- not take
    it as erased, fail the program on plane 1 and retire a good block."""
    disk, want = _prepared(tmp_path)
    twin = _twin(tmp_path, disk)
    ops = _media_ops(disk, _write_some)
    first = next(i for i, op in enumerate(ops) if op[0] == _MMGR_TYPE["erase"])
    _t, ch, lun, blk, pl, _pg = ops[first]
    assert pl == 0 and ops[first + 1][:5] == (_MMGR_TYPE["erase"], ch, lun, blk, 1)
    _cut_at(twin, _write_some, first + 1)
    m = _machine(twin)
    try:
        nxt = m.device.volt.store.next_page[ch, lun, blk]
        assert nxt[0] == 0 and nxt[1] > 0                  # the media really is half erased
        b = m.device.mode.addr.nblocks * (ch * m.device.mode.addr.nluns + lun) + blk
        assert m.device.mode.blocks.state[b] == BState.DIRTY
    finally:
        m.close()
    _check_after_cut(twin, want)


@pytest.mark.parametrize("plane", [0, 1])
def test_a_torn_unit_is_not_data_and_nothing_is_programmed_over_it(tmp_path, plane):
    """SPEC 8: the page a cut interrupts is consumed and reads ECC until erased. Its unit
    (planes disagree or unreadable) is not data, every flushed write survives, and the
    block is never programmed over the consumed page (no program failure after)."""
    disk, want = _prepared(tmp_path)
    twin = _twin(tmp_path, disk)
    ops = _media_ops(disk, _write_some)
    progs = [i for i, op in enumerate(ops) if op[0] == _MMGR_TYPE["program"] and op[4] == plane and op[5] > 0]
    cut = progs[len(progs) // 3]                            # inside a block, after some units
    _t, ch, lun, blk, _pl, pg = ops[cut]
    _cut_at(twin, _write_some, cut)
    m = _machine(twin)
    try:
        volt = m.device.volt
        assert volt.read(ch, lun, blk, plane, pg)[0] == MediaStatus.ECC      # torn, across a restart
        ftl = m.device.mode
        b = ftl.addr.nblocks * (ch * ftl.addr.nluns + lun) + blk
        assert ftl.blocks.state[b] != BState.OPEN or ftl.blocks.wp[b] > pg
        lbas = np.arange(ftl.nlbas)
        locs = ftl.map.l2p.astype(np.int64)
        on_torn = (locs < 0xFFFF_FF00) & (locs // ftl.addr.unit_secs == ftl.addr.unit_loc(b, pg) // ftl.addr.unit_secs)
        assert not on_torn[lbas].any()                       # nothing maps into the torn unit
        assert ftl.recovery.stats["torn_units"] >= 1
    finally:
        m.close()
    _check_after_cut(twin, want)


def test_a_torn_first_program_of_a_new_device_does_not_look_like_foreign_data(tmp_path):
    """The first thing a new device programs is its first checkpoint; a cut there leaves
    an unreadable page and nothing else. The next start must not refuse the disk as
    holding another mode's data."""
    disk = str(tmp_path / "ox.disk")
    twin = str(tmp_path / "twin.disk")

    def nothing(bdev):
        bdev.flush()

    ops = _media_ops(disk, nothing)
    first = next(i for i, op in enumerate(ops) if op[0] == _MMGR_TYPE["program"])
    assert _started(lambda f: _machine(twin, faults=f), Faults(power_cut_after=first)) is None
    m = _machine(twin)
    try:
        assert m.device.mode.stats()["good_blocks"] == m.device.mode.addr.total_blocks
    finally:
        m.close()
    _check_after_cut(twin, np.zeros(0, dtype=np.int64))


def test_a_block_is_not_erased_before_the_trims_that_emptied_it_are_journaled(tmp_path):
    """Trim journal before erase: LBA 0 has an old copy (v1) in a block that stays alive
    and a newer, flushed copy (v2) in block B; then it is deallocated and B holds nothing
    valid. If the trim journal cannot be written, B must not be erased -- else a power cut
    would let recovery map LBA 0 to v1, older than what was flushed."""
    geo = Geometry.small(nblocks=32)                      # checkpoints far apart: only the first
    disk = str(tmp_path / "ox.disk")
    m = Machine(volt=0, lnvm=0, disk=disk, geometry=geo, ram_mib=RAM_MIB)
    try:
        bdev = NvmeBlockDevice.open(m)
        ops, volt = m.device.mode, m.device.volt
        per_round = geo.total_luns * ops.addr.block_secs  # one full block on every LUN
        bdev.write_sectors(0, _fill(np.arange(per_round), 1))
        bdev.write_sectors(0, _fill(np.arange(8), 2))    # LBA 0's v2 opens the next blocks...
        bdev.write_sectors(per_round, _fill(np.arange(per_round, 2 * per_round - 8), 1))
        b = int(ops.map.l2p[0]) // ops.addr.block_secs
        assert ops.blocks.state[b] == BState.CLOSED
        others = np.flatnonzero(ops.map.p2l[b * ops.addr.block_secs:(b + 1) * ops.addr.block_secs] != 0xFFFF_FFFF)
        lbas = ops.map.p2l[b * ops.addr.block_secs + others].astype(np.int64)
        for lba in lbas[lbas != 0].tolist():                # ...then everything else in B moves away
            bdev.write_sectors(lba, _fill([lba], 3))
        bdev.flush()                                     # LBA 0 = v2, durable
        assert ops.map.valid[b] == 1 and ops.ckpt.ckpt_seq < ops.seq.next - 100
        bdev.discard_sectors(0, 1)                       # pending, not journaled yet
        assert ops.map.valid[b] == 0
        volt.faults.program_fail_rate = 1.0              # the trim journal cannot be written
        ops.gc.collect(b)
        volt.faults.program_fail_rate = 0.0
        assert b in ops.ckpt.held and ops.blocks.state[b] == BState.VICTIM
        assert volt.store.next_page[ops.addr.chlunblk(b)].all()          # not erased
        check_map(ops)
    finally:
        m.close()                                        # power gone: no flush, no shutdown
    m = Machine(volt=0, lnvm=0, disk=disk, geometry=geo, ram_mib=RAM_MIB)
    try:
        bdev = NvmeBlockDevice.open(m)
        assert _versions(bdev.read_sectors(0, 1), [0])[0] in (2, 0)    # v2 or the trim, never v1
        check_map(m.device.mode)
    finally:
        m.close()


def test_held_blocks_are_erased_once_the_trim_journal_is_written(appnvm_machine):
    """A block kept for the trim journal is released by the next FLUSH that writes it."""
    m = appnvm_machine()
    n = Nvme(m)
    ops, volt = n.ops, m.device.volt
    per_round = GEO.total_luns * ops.addr.block_secs
    for s in range(0, per_round, 256):
        assert n.write(s, stamp(np.arange(s, s + 256), 1)) == 0
    b = int(ops.map.l2p[0]) // ops.addr.block_secs
    lbas = np.flatnonzero(ops.map.l2p // ops.addr.block_secs == b)
    assert n.dsm([(int(lba), 1) for lba in lbas[:200]]) == 0
    volt.faults.program_fail_rate = 1.0
    ops.gc.collect(b)
    volt.faults.program_fail_rate = 0.0
    assert ops.blocks.state[b] == BState.VICTIM and ops.stats()["held_blocks"] == 1
    assert n.flush() == 0
    assert ops.blocks.state[b] == BState.FREE and ops.stats()["held_blocks"] == 0
    got = n.read_versions(0, per_round)
    want = np.ones(per_round, dtype=np.int64)
    want[lbas] = 0
    assert (got == want).all()
    check_map(ops)
