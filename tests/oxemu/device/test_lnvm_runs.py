"""Runs of open-channel commands rung in by one doorbell (lnvm_runs) answer exactly as the
same commands executed one by one: statuses, failed-address bitmaps, completion times
under the timing model, data and OOB read back, media state, counters and DMA byte counts.

Two machines get the same doorbells -- one with the run path (and io's plain-integer
write path) switched off -- and are compared after every doorbell. The doorbells mix
well-formed multi-command writes and reads (the path's own case) with everything it must
decline or get exactly right: NAND rule violations, malformed writes, empty pages,
metadata, scattered buffers, PRP lists, pointers outside guest RAM, out-of-geometry
addresses and runs of mixed opcodes.
"""
import numpy as np

from oxemu import Geometry, Machine
from oxemu.wire import SQE_DTYPE, NvmOpc, PMode
from oxhost.lightnvm import Device

GEO = Geometry.small()
WRITE, READ, ERASE = int(NvmOpc.PH_WRITE), int(NvmOpc.PH_READ), int(NvmOpc.PH_ERASE)


class Host:
    """One machine and the raw doorbells sent to it."""

    def __init__(self, runs: bool):
        self.m = Machine(geometry=GEO, timing="model")
        if not runs:
            self.m.device.mode.io_run = None        # the controller then runs commands one by one
            self.m.device.mode._groups = lambda cmd: None    # ... each through io's general path
        self.dev = Device.open(self.m)
        self.drv = self.dev.driver
        pool = self.drv.pool
        self.data = pool.alloc(4 << 20)           # command buffers
        self.lists = pool.alloc(64 * 64 * 8)      # PPA lists, 64 per command slot
        self.meta = pool.alloc(64 * 64 * 16)

    def close(self):
        self.m.close()

    def ring(self, cmds):
        """cmds: (opcode, ppas, pmode, data offset or list of page offsets, meta?) each; returns
        (statuses, results) and the bytes of each command's buffer afterwards."""
        sq = np.zeros(len(cmds), dtype=SQE_DTYPE)
        geo = self.dev.geo
        for i, (op, ppas, pmode, where, meta) in enumerate(cmds):
            n = len(ppas)
            if n == 1:
                spba = ppas[0]
            else:
                self.lists.array.view("<u8")[i * 64:i * 64 + n] = ppas
                spba = self.lists.addr + i * 512
            sq[i]["opcode"], sq[i]["nsid"] = op, where[2] if len(where) > 2 else 1
            sq[i]["cdw10"], sq[i]["cdw11"] = spba & 0xFFFFFFFF, spba >> 32
            sq[i]["cdw12"] = (n - 1) | (int(pmode) << 16)
            if op != ERASE:
                kind, at = where[0], where[1]
                if kind == "contig":
                    p1, p2 = self.drv.prps(1, i, self.data.addr + at, n * geo.sector_nbytes)
                elif kind == "raw":                # PRP1 / PRP2 given as they are
                    p1, p2 = at
                else:                              # "pages": a PRP list of scattered pages
                    pages = [self.data.addr + p for p in at]
                    lst = self.drv.queues[1].prp[(self.drv.queues[1].sq_tail + i) % self.drv.queues[1].depth]
                    lst._u64[:len(pages) - 1] = pages[1:]
                    p1, p2 = pages[0], lst._buf.addr if len(pages) > 2 else pages[1]
                sq[i]["prp1"], sq[i]["prp2"] = p1, p2
                if meta:
                    sq[i]["mptr"] = self.meta.addr + i * 64 * 16
        st, res = self.drv.submit_array(1, sq)
        return st.tolist(), res.tolist()

    def state(self) -> dict:
        dev = self.m.device
        volt, ctrl, t = dev.volt, dev.controller, dev.volt.timing
        s = volt.store
        return dict(data=s.data.tobytes(), oob=s.oob.tobytes(), nxt=s.next_page.tobytes(),
                    bbt=s.bbt.tobytes(), pstate=s.page_state.tobytes(), counters=dict(volt.counters),
                    ops=volt.ops, ctrl=dict(ctrl.counters), opcodes=dict(ctrl.opcodes),
                    errors=list(ctrl.error_log), dma=(self.m.dma.bytes_read, self.m.dma.bytes_written),
                    ftl=(dev.mode.bytes_read, dev.mode.bytes_written), now=t.now_ns,
                    luns=repr(t._lun_busy), chans=repr((t._chan_booked, t._chan_floor)),
                    buf=self.data.array.tobytes(), meta=self.meta.array.tobytes())


def ppa(ch, lun, blk, pg, pl=0, sec=0):
    f = GEO.ppaf
    return ((ch << f["ch"][0]) | (lun << f["lun"][0]) | (blk << f["blk"][0]) | (pg << f["pg"][0])
            | (pl << f["pl"][0]) | (sec << f["sec"][0]))


def unit(ch, lun, blk, pg):
    """Both planes of one page, sectors in order: a dual-plane write unit."""
    return [ppa(ch, lun, blk, pg, pl, s) for pl in range(2) for s in range(4)]


def erase(ch, lun, blk):
    return (ERASE, [ppa(ch, lun, blk, 0, pl) for pl in range(2)], PMode.DUAL, (None, 0), False)


def write(units, at, meta=False, pmode=PMode.DUAL):
    return (WRITE, [p for u in units for p in u], pmode, ("contig", at), meta)


def read(ppas, at, meta=False, kind="contig"):
    return (READ, ppas, PMode.SNGL, (kind, at), meta)


def _scenario(rng):
    """Doorbells: each a list of commands (see Host.ring)."""
    S = 4096
    bells = [[erase(ch, lun, b) for ch in range(2) for lun in range(2) for b in range(1, 5)]]
    # well-formed striped writes, 64 addresses a command, data one extent (+ OOB)
    for pg0 in (0, 2, 4):
        cmds, at = [], 0
        for k in range(4):
            units = [unit(ch, lun, 1 + k // 2, pg0 + (k % 2)) for ch in range(2) for lun in range(2)]
            cmds.append(write(units, at, meta=pg0 == 2))
            at += len(units) * 8 * S
        bells.append(cmds)
    # the tail of a host call: commands of 64 addresses and a shorter last one (+ OOB)
    tail = [unit(ch, lun, 3, pg) for pg in range(7) for ch in range(2) for lun in range(2)][:26]
    bells.append([write(tail[8 * c:8 * c + 8], 64 * S * c, meta=True) for c in range(4)])
    # single writes: the plain-integer path, and what it leaves to the general one
    bells += [[write([unit(0, 1, 7, 0)], 0, meta=True)], [write([unit(0, 1, 7, 1), unit(1, 1, 7, 0)], 0)],
              [write([unit(0, 1, 7, 1)], 0)], [write([unit(0, 1, 7, 3)], 8 * S)],
              [(WRITE, [p | (1 << 40) for p in unit(1, 0, 7, 0)], PMode.DUAL, ("contig", 0), False)],
              [(WRITE, unit(1, 0, 7, 0)[:4] * 2, PMode.DUAL, ("contig", 0), False)],
              [write([unit(1, 0, 7, 0)], 0, pmode=PMode.SNGL)], [write([unit(1, 0, 7, 1)], 0, pmode=PMode.QUAD)]]
    # single erases: planes out of order, a block twice, one address, a block beyond the geometry
    bells += [[(ERASE, [ppa(0, 0, 7, 0, 1), ppa(0, 0, 7, 0, 0)], PMode.DUAL, (None, 0), False)],
              [(ERASE, [ppa(0, 0, 7, 0, pl) for pl in (0, 1, 0, 1)], PMode.DUAL, (None, 0), False)],
              [(ERASE, [ppa(1, 1, 7, 3)], PMode.SNGL, (None, 0), False)], [erase(1, 1, 7)],
              [(ERASE, [ppa(1, 1, 9, 0, pl) for pl in (0, 1)], PMode.DUAL, (None, 0), False)]]
    # NAND rule violations inside a run: a page twice, a page out of order, a rewrite
    bells.append([write([unit(0, 0, 4, 0)], 0), write([unit(0, 0, 4, 0)], 8 * S),
                  write([unit(0, 1, 4, 3)], 16 * S), write([unit(0, 1, 1, 0)], 24 * S)])
    # malformed: a partial page, sectors out of order, one unit twice in one command,
    # quad-plane mode on a dual-plane device, a PPA beyond the geometry
    bad = unit(1, 1, 4, 0)
    bells.append([write([unit(1, 0, 4, 0)], 0), (WRITE, bad[:6], PMode.DUAL, ("contig", S * 8), False)])
    bells.append([(WRITE, bad[:4][::-1] + bad[4:], PMode.DUAL, ("contig", 0), False)])
    bells.append([write([unit(1, 1, 4, 0), unit(1, 1, 4, 0)], 0)])
    bells.append([write([unit(1, 1, 4, 0)], 0, pmode=PMode.QUAD), write([unit(1, 1, 4, 1)], 8 * S)])
    bells.append([write([unit(1, 1, 4, 0)], 0), (WRITE, [p | (1 << 40) for p in unit(1, 1, 4, 1)],
                                                 PMode.DUAL, ("contig", 8 * S), False)])
    # reads: whole pages, runs, single addresses, empty pages, scattered sectors, OOB
    written = [unit(ch, lun, b, pg) for ch in range(2) for lun in range(2) for b in (1, 2) for pg in range(6)]
    for r in range(6):
        cmds, at = [], 0
        for _ in range(rng.integers(1, 6)):
            kind = rng.integers(0, 5)
            if kind == 0:                         # whole units
                us = [written[i] for i in rng.choice(len(written), 8, replace=False)]
                ppas = [p for u in us for p in u]
            elif kind == 1:                       # scattered sectors, empty pages among them
                ppas = [ppa(int(rng.integers(2)), int(rng.integers(2)), int(rng.integers(1, 6)),
                            int(rng.integers(8)), int(rng.integers(2)), int(rng.integers(4)))
                        for _ in range(int(rng.integers(2, 64)))]
            elif kind == 2:                       # one address
                ppas = [written[int(rng.integers(len(written)))][int(rng.integers(8))]]
            elif kind == 3:                       # a page and a half
                u = written[int(rng.integers(len(written)))]
                ppas = u + u[:4]
            else:                                 # a page never programmed
                ppas = unit(1, 0, 3, 15)
            cmds.append(read(ppas, at, meta=bool(rng.integers(2))))
            at += len(ppas) * S
        bells.append(cmds)
    tailp = [p for u in tail for p in u]
    bells.append([read(tailp[64 * c:64 * c + 64], 64 * S * c, meta=True) for c in range(4)])
    bells.append([read(tailp[64 * c:64 * c + 64], 64 * S * c) for c in range(3)]
                 + [read(tailp[192:200] + tailp[:1], 192 * S)])
    # buffers: scattered pages through a PRP list, two pages, a pointer beyond guest RAM
    u = written[0] + written[1]
    bells.append([read(u, [5 * S, 1 * S, 9 * S, 3 * S, 0, 7 * S, 2 * S, 11 * S, 4 * S, 6 * S, 8 * S,
                           10 * S, 12 * S, 13 * S, 14 * S, 15 * S], kind="pages"),
                  read(written[2], 20 * S)])
    bells.append([read(written[3][:2], (2 << 20) + 2048), read(written[4], 0)])
    bells.append([read(written[5], 0), (READ, written[6], PMode.SNGL, ("raw", ((1 << 40), 0)), False),
                  read(written[7], 16 * S)])
    bells.append([read(written[5], 0), (READ, written[6], PMode.SNGL, ("contig", 8 * S, 2), False)])
    # a mixed run: write, read, write, erase, read
    bells.append([write([unit(0, 0, 5, 0)], 0), read(written[8], 8 * S), write([unit(0, 0, 5, 1)], 16 * S),
                  erase(1, 1, 6), read(unit(0, 0, 5, 0) + unit(0, 0, 5, 1), 24 * S)])
    return bells


def test_lnvm_runs_answer_exactly_as_the_commands_one_by_one():
    rng = np.random.default_rng(7)
    bells = _scenario(rng)
    a, b = Host(runs=False), Host(runs=True)
    try:
        fill = np.random.default_rng(1).integers(0, 256, a.data.nbytes, dtype=np.uint8)
        mfill = np.random.default_rng(2).integers(0, 256, a.meta.nbytes, dtype=np.uint8)
        taken = 0
        for i, cmds in enumerate(bells):
            for h in (a, b):                       # the same buffers before every doorbell
                h.data.array[:] = fill
                h.meta.array[:] = mfill
            ra, rb = a.ring(cmds), b.ring(cmds)
            assert ra == rb, f"doorbell {i}: completions differ"
            sa, sb = a.state(), b.state()
            for key in sa:
                assert sa[key] == sb[key], f"doorbell {i}: {key} differs"
            taken += sum(1 for st in ra[0] if st == 0)
        assert taken > 50                          # the scenario did exercise the fast path
    finally:
        a.close()
        b.close()


def test_lnvm_runs_take_a_striped_line_write_and_read_at_once():
    """The fast path is the one taken for a vblk line: one VOLT call per doorbell."""
    from oxhost.lightnvm import VBlk
    with Machine(geometry=GEO) as m:
        dev = Device.open(m)
        calls = []
        volt = m.device.volt
        orig = volt.program_pages
        volt.program_pages = lambda *a: calls.append(len(a[4])) or orig(*a)
        line = VBlk.alloc_line(dev, 0, 1, 0, 1, 2)
        line.erase()
        src = np.arange(line.nbytes, dtype=np.uint32).view(np.uint8)[:line.nbytes]
        line.pwrite(src, 0)
        assert calls and all(n > 2 for n in calls)        # whole doorbells, not page pairs
        assert np.array_equal(line.pread(line.nbytes, 0), src)
