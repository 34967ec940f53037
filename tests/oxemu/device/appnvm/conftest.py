"""AppNVM device tests: a machine in lnvm=0 mode driven through the real bus with the
user-space NVMe driver, plus stamped sectors that say which LBA and version they hold."""
import numpy as np
import pytest

from oxemu import Geometry
from oxemu.wire import NvmOpc
from oxhost.driver import NvmeDriver

SECTOR = 4096
GEO = Geometry.small(nblocks=16)          # 2ch x 2lun x 16blk x 16pg: 64 blocks of 128 sectors
DNR = 0x4000
LBA_RANGE = 0x0080 | DNR
INVALID_FIELD = 0x0002 | DNR
DATA_XFER_ERROR = 0x0004


def stamp(lbas, version) -> np.ndarray:
    """One sector per LBA: [lba u64, version u64, filler...] (filler depends on both)."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
    vers = np.broadcast_to(np.asarray(version, dtype=np.int64), lbas.shape)
    out = ((lbas[:, None] * 7 + vers[:, None] * 13 + np.arange(SECTOR)) & 0xFF).astype(np.uint8)
    out[:, :8] = lbas.view(np.uint8).reshape(-1, 8)
    out[:, 8:16] = np.ascontiguousarray(vers).view(np.uint8).reshape(-1, 8)
    return out.reshape(-1)


def versions(data: np.ndarray, lbas) -> np.ndarray:
    """The version stamped in each sector; -1 where the sector is not a stamp of its LBA
    (0 for an all-zero sector, i.e. never written or deallocated)."""
    lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
    d = data.reshape(-1, SECTOR)
    lb = d[:, :8].copy().view(np.int64).ravel()
    ver = d[:, 8:16].copy().view(np.int64).ravel()
    zero = ~d.any(axis=1)
    ok = (lb == lbas) & (d == stamp(lbas, ver).reshape(-1, SECTOR)).all(axis=1)
    return np.where(zero, 0, np.where(ok, ver, -1))


class Nvme:
    """Raw NVM commands on I/O queue 1; statuses come back, nothing raises."""

    def __init__(self, machine, **driver_kw):
        self.m = machine
        self.drv = NvmeDriver(machine, **driver_kw)
        self.ops = machine.device.mode
        self.buf = self.drv.pool.alloc(2 << 20)
        self.dsm_buf = self.drv.pool.alloc(4096)

    @property
    def nlbas(self) -> int:
        return self.ops.nlbas

    def cmd(self, opcode, slba=0, nlb=1, *, prp=None, nbytes=None, cdw11_hi=None, cdw12_extra=0,
            cdw11=None, nsid=1, cdw10=None):
        nbytes = nlb * SECTOR if nbytes is None else nbytes
        p1, p2 = prp if prp is not None else self.drv.prps(1, 0, self.buf.addr, nbytes)
        c10 = slba & 0xFFFFFFFF if cdw10 is None else cdw10
        c11 = slba >> 32 if cdw11 is None else cdw11
        c = self.drv.submit(1, [(opcode, 0, nsid, 0, p1, p2, c10, c11, ((nlb - 1) & 0xFFFF) | cdw12_extra,
                                 0, 0, 0)])[0]
        return c.status

    def write(self, slba, data, fua=False) -> int:
        data = np.asarray(data, dtype=np.uint8).reshape(-1)
        self.buf.array[:data.size] = data
        return self.cmd(NvmOpc.WRITE, slba, data.size // SECTOR, cdw12_extra=(1 << 30) if fua else 0)

    def read(self, slba, nlb=1):
        st = self.cmd(NvmOpc.READ, slba, nlb)
        return st, self.buf.array[:nlb * SECTOR].copy()

    def flush(self) -> int:
        c = self.drv.submit(1, [(NvmOpc.FLUSH, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)])[0]
        return c.status

    def dsm(self, ranges, ad=True) -> int:
        r = self.dsm_buf.array.view([("cattr", "<u4"), ("nlb", "<u4"), ("slba", "<u8")])
        r[:] = 0
        for i, (s, n) in enumerate(ranges):
            r[i] = (0, n, s)
        c = self.drv.submit(1, [(NvmOpc.DSM, 0, 1, 0, self.dsm_buf.addr, 0, len(ranges) - 1,
                                 (1 << 2) if ad else 0, 0, 0, 0, 0)])[0]
        return c.status

    def write_stamped(self, lbas, version) -> None:
        """Each LBA its own command when scattered; one command per contiguous run."""
        lbas = np.atleast_1d(np.asarray(lbas, dtype=np.int64))
        for lba, v in zip(lbas.tolist(), np.broadcast_to(version, lbas.shape).tolist()):
            assert self.write(lba, stamp(lba, v)) == 0

    def read_versions(self, first=0, count=None) -> np.ndarray:
        count = self.nlbas - first if count is None else count
        out = np.empty(count, dtype=np.int64)
        for s in range(0, count, 256):
            k = min(256, count - s)
            st, data = self.read(first + s, k)
            assert st == 0
            out[s:s + k] = versions(data, np.arange(first + s, first + s + k))
        return out

    def shutdown(self) -> None:
        self.drv.shutdown()


@pytest.fixture
def appnvm_machine(make_machine):
    """appnvm_machine(**Machine kwargs): lnvm=0 machines on GEO, closed at teardown."""

    def make(**kw):
        kw.setdefault("geometry", GEO)
        kw.setdefault("lnvm", 0)
        return make_machine(**kw)

    return make


@pytest.fixture
def nvme(appnvm_machine):
    """An Nvme on a fresh volatile lnvm=0 machine with the GEO geometry."""
    return Nvme(appnvm_machine())


def check_map(ops) -> None:
    """The FTL's invariants: L2P and P2L agree, valid counts match, live data sits only in
    data blocks, and buffered sectors keep their durable copy valid."""
    from oxemu.device.appnvm.blocks import BState
    from oxemu.device.appnvm.mapping import CACHE_BASE, NO_LBA, UNMAPPED

    m, wb = ops.map, ops.wbuf
    l2p = m.l2p.astype(np.int64)
    media = np.flatnonzero(l2p < CACHE_BASE)
    assert (m.p2l[l2p[media]] == media).all()
    want = set(l2p[media].tolist())
    assert (m.slot_lba[wb.n:] == -1).all()
    for j in range(wb.n):
        lba = int(m.slot_lba[j])
        if lba >= 0:
            assert l2p[lba] == CACHE_BASE + j
            if m.slot_prev[j] != UNMAPPED:
                assert m.p2l[m.slot_prev[j]] == lba
                want.add(int(m.slot_prev[j]))
    live = np.flatnonzero(m.p2l != NO_LBA)
    assert set(live.tolist()) == want
    counts = np.bincount(live // ops.addr.block_secs, minlength=m.valid.size)
    assert (m.valid == counts).all()
    holding = ops.blocks.state[counts > 0]
    assert np.isin(holding, [BState.OPEN, BState.CLOSED, BState.VICTIM]).all()
    check_blocks(ops)


def check_blocks(ops) -> None:
    """Every good block is accounted for exactly once -- in a free list, open in a stream,
    closed, a metadata block, or a GC victim (pending, or waiting for the trim journal) --
    so no block can leak."""
    from oxemu.device.appnvm.blocks import BState

    bl = ops.blocks
    state = bl.state
    free = [b for dq in bl.free for b in dq]
    assert len(free) == len(set(free)) == bl.nfree
    assert set(free) == set(np.flatnonzero(np.isin(state, [BState.FREE, BState.DIRTY])).tolist())
    opened = [b for b in bl.open_user if b >= 0] + ([bl.open_gc] if bl.open_gc >= 0 else [])
    assert set(opened) == set(np.flatnonzero(state == BState.OPEN).tolist())
    assert set(bl.meta_blocks) == set(np.flatnonzero(state == BState.META).tolist())
    assert bl.open_meta < 0 or bl.open_meta in bl.meta_blocks
    victims = set(ops.gc.pending) | set(ops.ckpt.held)
    assert victims == set(np.flatnonzero(state == BState.VICTIM).tolist())
