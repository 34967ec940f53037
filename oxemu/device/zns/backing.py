"""A zone's data on the NAND and in NVRAM: programs at the write pointer, reads, resets,
and what a power-on finds (the zone layout and record: layout.py).

Writes are durable when they complete. Whole write units go straight to the NAND; the
sectors of a unit not yet whole wait in the zone's NVRAM write buffer -- the controller's
power-loss-protected memory, as on datacenter ZNS drives -- and go to the NAND from there
when the unit fills. A unit whose program fails, or that a power cut tears, is skipped:
its page is consumed, the skip is recorded, and the data is programmed at the next
physical unit (from the buffer, or from the command still in hand). A zone whose
physical units run out is finished by the controller (ZFC); one whose record has no room
for another skip goes read-only. Neither loses a sector that was acknowledged: what the
NAND could not take stays readable in the buffer.

At power-on the write pointer follows from VOLT's per-block-plane write pointers: the
consumed physical units are a prefix (units are programmed in order, and a cut stops
everything after it), their count is the sum over the zone's LUNs, a torn last unit is a
skip found by its page state, and the buffer's count adds its sectors. Nothing is written
at power-on: a torn unit's skip, a buffer that was full when the power went, and a reset
whose erases the cut interrupted are completed before the zone is next written.
"""
import logging

import numpy as np

from ...volt import MediaOp, MediaStatus
from ...volt.media import BAD_STATES
from ...volt.store import PageState
from ...wire import Status, ZoneAttr, ZoneState
from ..errors import CommandError
from .layout import MAX_SKIPS, OP_RESET, SHAPE_MAGIC, ZONE_RECORD, ZONE_SHAPE, ZoneLayout

log = logging.getLogger(__name__)

READ_TRIES = 4                   # an uncorrectable read is retried before it fails the command
_OK, _ECC = int(MediaStatus.OK), int(MediaStatus.ECC)


class ZoneBacking:
    """Per-zone physical state over VOLT (through OX core) and the NVRAM records."""

    def __init__(self, core, lay: ZoneLayout):
        self.core = core
        self.volt = volt = core.volt
        self.lay = lay
        g = self.geo = volt.geo
        nv = volt.store.nvram
        self.shape = nv.header[:ZONE_SHAPE.itemsize].view(ZONE_SHAPE)
        self._shaped = int(self.shape[0]["magic"]) == SHAPE_MAGIC
        self.rec = nv.records.view(ZONE_RECORD).reshape(-1)
        self.buf = nv.units
        self.buf_meta = nv.metas
        self.sb, self.sos, self.us = g.sector_nbytes, g.meta_nbytes, lay.unit
        n = lay.nzones
        self.row = [lay.row(z) for z in range(n)]
        self.phys = [0] * n              # physical units consumed
        self.good = [0] * n              # logical units on the NAND
        self.skips = [[] for _ in range(n)]            # skipped physical units, recorded or not yet
        self.unrecorded = [[] for _ in range(n)]       # ... found at power-on, recorded at the next write
        self.reset_due = [False] * n     # a reset the power cut interrupted
        self.ragged = [False] * n        # a cut left a unit programmed on some planes only
        self.bad = [False] * n           # a block of the zone is bad: the zone is offline
        self.now = self.done = 0
        self.counters = dict(units_programmed=0, units_skipped=0, program_fails=0, buffered_sectors=0,
                             resets=0, reset_fails=0, read_retries=0, zones_finished_by_controller=0,
                             zones_made_read_only=0)

    # ------------------------------------------------------------ the record
    def record(self, z: int):
        return self.rec[self.row[z]]

    def buffered(self, z: int) -> int:
        """Sectors of logical unit good[z] waiting in the buffer."""
        r = self.record(z)
        if self.reset_due[z] or int(r["buf_unit"]) != self.good[z]:
            return 0
        return int(r["buf_count"])

    def wp(self, z: int) -> int:
        return self.good[z] * self.us + self.buffered(z)

    def _mutating(self) -> None:
        """Before the media changes: the header says so, and the zone shape is on record."""
        self.volt.mutating()
        if not self._shaped:
            self.shape[0] = self.lay.shape()
            self._shaped = True

    def set_state(self, z: int, state: int, attrs: int | None = None) -> bool:
        """Record a state that does not follow from the write pointer (0: it follows). A
        reset a cut interrupted is finished first; False when that failed (the zone is
        offline now)."""
        if self.reset_due[z] and not self.erase(z):
            return False
        r = self.record(z)
        if int(r["state"]) == state and (attrs is None or int(r["attrs"]) == attrs):
            return True
        self._mutating()
        r["state"] = state
        if attrs is not None:
            r["attrs"] = attrs
        return True

    # ------------------------------------------------------------ power-on
    def recover(self) -> list:
        """Every zone's (state, attrs) from VOLT and the records; writes nothing."""
        st = self.volt.store
        nxt, pstate, bbt = st.next_page, st.page_state, st.bbt
        lay, out = self.lay, []
        for z in range(lay.nzones):
            r = self.record(z)
            chs, luns, blk = lay.luns(z)
            ch, lun = np.array(chs), np.array(luns)
            self.bad[z] = bool(np.isin(bbt[ch, lun, blk], BAD_STATES).any())
            self.skips[z] = [int(s) for s in r["skips"][:int(r["nskips"])]]
            self.unrecorded[z] = []
            if int(r["op"]) == OP_RESET:
                self.reset_due[z] = True
                self.phys[z] = self.good[z] = 0
            else:
                planes = nxt[ch, lun, blk].astype(np.int64)
                used = planes.max(axis=1)                                    # pages consumed per LUN
                self.ragged[z] = bool((planes != used[:, None]).any())
                p = int(used.sum())
                self.phys[z] = p
                if p:
                    self._find_skips(z, p, nxt, pstate)
                self.good[z] = p - len(self.skips[z])
            out.append(self.derived_state(z))
        return out

    def _find_skips(self, z: int, p: int, nxt, pstate) -> None:
        """Consumed units not recorded as skipped whose pages are not all readable: the
        one a power cut tore (the last), or any a cut kept from being recorded."""
        units = np.arange(p)
        ch, lun, blk, pg = self.lay.units_at(z, units)
        ok = (nxt[ch, lun, blk] > pg[:, None]).all(axis=1) & (pstate[ch, lun, blk, pg] == PageState.OK).all(axis=1)
        known = set(self.skips[z])
        for u in np.flatnonzero(~ok).tolist():
            if u not in known:
                self.skips[z].append(u)
                self.unrecorded[z].append(u)

    def derived_state(self, z: int) -> tuple[int, int]:
        r = self.record(z)
        rs, attrs = int(r["state"]), int(r["attrs"])
        if self.bad[z] or rs == ZoneState.OFFLINE:
            return ZoneState.OFFLINE, attrs
        if self.reset_due[z]:
            return ZoneState.EMPTY, 0
        if rs in (ZoneState.READ_ONLY, ZoneState.FULL):
            return rs, attrs
        wp = self.wp(z)
        if wp >= self.lay.zcap:
            return ZoneState.FULL, attrs
        if wp or rs in (ZoneState.EXPLICITLY_OPEN, ZoneState.CLOSED):
            return ZoneState.CLOSED, attrs
        return ZoneState.EMPTY, attrs

    def dirty(self, z: int) -> bool:
        """The zone holds anything a reset must erase or clear."""
        r = self.record(z)
        return bool(self.phys[z] or self.reset_due[z] or int(r["buf_count"]) or int(r["nskips"])
                    or int(r["state"]) or int(r["attrs"]))

    # ------------------------------------------------------------ writes
    def _settle(self, z: int) -> None:
        """Finish what a power cut left undone before the zone is written: the reset's
        erases, the skips found at power-on, a buffer that was full."""
        if self.reset_due[z]:
            self.erase(z)
        if self.ragged[z]:
            self._even_planes(z)
        if self.unrecorded[z]:
            self._record_skips(z, self.unrecorded[z])
            self.unrecorded[z] = []
        r = self.record(z)
        if int(r["buf_count"]) == self.us and int(r["buf_unit"]) == self.good[z]:
            row = self.row[z]
            self._program(z, self.buf[row], self.buf_meta[row], 1)
            r["buf_count"] = 0

    def _even_planes(self, z: int) -> None:
        """The unit a cut tore on some planes only: program the planes it never reached
        (zeros; the unit is skipped anyway), so every plane of the LUN is at the same page
        again and the next unit there can be programmed."""
        g, nxt = self.geo, self.volt.store.next_page
        chs, luns, blk = self.lay.luns(z)
        for c, lu in zip(chs, luns):
            planes = nxt[c, lu, blk].astype(np.int64)
            top = int(planes.max())
            for pl in np.flatnonzero(planes < top).tolist():
                for pg in range(int(planes[pl]), top):
                    self.core.program_pages([c], [lu], [blk], [pl], [pg], np.zeros((1, g.page_nbytes), np.uint8),
                                            None)
        self.ragged[z] = False

    def write(self, z: int, data: np.ndarray, meta: np.ndarray) -> None:
        """n sectors (data, their host OOB) at the zone's write pointer, durable on return.
        CommandError (WRITE_FAULT) when the zone ran out of room for them; what landed
        before stays."""
        self._mutating()
        self._settle(z)
        sb, sos, us = self.sb, self.sos, self.us
        n = data.size // sb
        row = self.row[z]
        r = self.record(z)
        i = 0
        bc = int(r["buf_count"])
        if bc:                                              # complete the unit in the buffer
            k = min(us - bc, n)
            self._mutating()
            self.buf[row, bc * sb:(bc + k) * sb] = data[:k * sb]
            self.buf_meta[row, bc * sos:(bc + k) * sos] = meta[:k * sos]
            r["buf_count"] = bc + k
            self.counters["buffered_sectors"] += k
            i = k
            if bc + k == us:
                self._program(z, self.buf[row], self.buf_meta[row], 1)
                r["buf_count"] = 0
        whole = (n - i) // us
        if whole:
            self._program(z, data[i * sb:(i + whole * us) * sb], meta[i * sos:(i + whole * us) * sos], whole)
            i += whole * us
        if i < n:                                           # the rest waits for its unit to fill
            k = n - i
            self._mutating()
            self.buf[row, :k * sb] = data[i * sb:]
            self.buf_meta[row, :k * sos] = meta[i * sos:]
            r["buf_unit"] = self.good[z]
            r["buf_count"] = k
            self.counters["buffered_sectors"] += k

    def _program(self, z: int, data: np.ndarray, meta: np.ndarray, k: int) -> None:
        """k whole logical units at the next physical units, skipping those that fail."""
        lay, g = self.lay, self.geo
        npl, ub, mb = g.nplanes, self.us * self.sb, self.us * self.sos
        f = self.volt.faults
        careful = bool(f.program_fail or f.program_fail_rate)    # one unit at a time: a failure moves the rest
        j = 0
        while j < k:
            room = lay.units - self.phys[z]
            if room <= 0:
                self._finish_by_controller(z)
                raise CommandError(Status.WRITE_FAULT, f"zone {z}: no physical unit left for its data "
                                                       f"(finished by the controller)")
            m = 1 if careful else min(k - j, room)
            p0 = self.phys[z]
            ch, lun, blk, pg = lay.units_at(z, np.arange(p0, p0 + m))
            rep = lambda a: np.repeat(a, npl)                  # noqa: E731 - one row per plane page
            st = self.core.program_pages(rep(ch), rep(lun), rep(blk), np.tile(np.arange(npl), m), rep(pg),
                                         data[j * ub:(j + m) * ub].reshape(m * npl, g.page_nbytes),
                                         meta[j * mb:(j + m) * mb].reshape(m * npl, g.nsectors * self.sos))
            self._charge(MediaOp.PROGRAM, ch, lun, pg, g.page_nbytes * npl)
            self.phys[z] += m
            ok = (st.reshape(m, npl) == _OK).all(axis=1)
            first_bad = m if ok.all() else int(np.argmin(ok))
            self.good[z] += first_bad
            self.counters["units_programmed"] += first_bad
            j += first_bad
            if first_bad < m:                               # that unit and any after it: skipped
                self.counters["program_fails"] += 1
                self._record_skips(z, list(range(p0 + first_bad, p0 + m)))

    def _record_skips(self, z: int, units: list) -> None:
        r = self.record(z)
        n = int(r["nskips"])
        recorded = set(r["skips"][:n].tolist())
        new = [u for u in units if u not in recorded]
        if n + len(new) > MAX_SKIPS:
            self.set_state(z, ZoneState.READ_ONLY)
            self.counters["zones_made_read_only"] += 1
            log.warning("ZNS zone %d: more than %d units failed: read-only", z, MAX_SKIPS)
            raise CommandError(Status.WRITE_FAULT, f"zone {z}: its media failed too often (now read-only)")
        self._mutating()
        for u in new:
            r["skips"][n] = u
            n += 1
            if u not in self.skips[z]:
                self.skips[z].append(u)
        r["nskips"] = n
        self.counters["units_skipped"] += len(new)

    def _finish_by_controller(self, z: int) -> None:
        self.set_state(z, ZoneState.FULL, int(self.record(z)["attrs"]) | ZoneAttr.ZFC)
        self.counters["zones_finished_by_controller"] += 1
        log.warning("ZNS zone %d: physical units used up before its capacity: finished by the controller", z)

    # ------------------------------------------------------------ reads
    def read(self, z: int, off: int, n: int, out: np.ndarray, meta: np.ndarray | None) -> bool:
        """Sectors off .. off + n - 1 of zone z into out (and their host OOB into meta);
        never-written ones read as zeros. False when a sector could not be read."""
        sb, sos, us, g = self.sb, self.sos, self.us, self.geo
        if n == 1:
            return self._read_one(z, off, out, meta)
        o = np.arange(off, off + n, dtype=np.int64)
        i, k = np.divmod(o, us)
        good = self.good[z]
        on_nand = i < good
        bc = self.buffered(z)
        in_buf = (i == good) & (k < bc)
        rows = out.reshape(n, sb)
        mrows = meta.reshape(n, sos) if meta is not None else None
        rest = ~(on_nand | in_buf)
        if rest.any():
            rows[rest] = 0
            if mrows is not None:
                mrows[rest] = 0
        if in_buf.any():
            row = self.row[z]
            kb = k[in_buf]
            rows[in_buf] = self.buf[row].reshape(us, sb)[kb]
            if mrows is not None:
                mrows[in_buf] = self.buf_meta[row].reshape(us, sos)[kb]
        if not on_nand.any():
            return True
        sel = np.flatnonzero(on_nand)
        p = self.lay.physical(i[sel], self.skips[z])
        ch, lun, blk, pg = self.lay.units_at(z, p)
        pl, sec = np.divmod(k[sel], g.nsectors)
        key = ((ch * g.nluns + lun) * g.npages + pg) * g.nplanes + pl
        uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
        st, prow = self.core.read_pages(ch[first], lun[first], blk[first], pl[first], pg[first])
        st = st.astype(np.int64)
        for x in np.flatnonzero(st == _ECC).tolist():                  # read retry
            for _ in range(READ_TRIES - 1):
                self.counters["read_retries"] += 1
                again, _, _ = self.core.read(int(ch[first[x]]), int(lun[first[x]]), int(blk[first[x]]),
                                             int(pl[first[x]]), int(pg[first[x]]))
                if again is not MediaStatus.ECC:
                    st[x] = int(again)
                    break
        order = np.argsort(first, kind="stable")
        fo = first[order]
        self._charge(MediaOp.READ, ch[fo], lun[fo], pg[fo], g.page_nbytes)
        okp = st[inv] == _OK
        src = self.volt.data_rows.reshape(-1, sb)
        rows[sel[okp]] = src[prow[inv][okp] * g.nsectors + sec[okp]]
        rows[sel[~okp]] = 0
        if mrows is not None:
            host = self.volt.oob_rows[:, :g.nsectors * sos].reshape(-1, g.nsectors, sos)
            mrows[sel[okp]] = host[prow[inv][okp], sec[okp]]
            mrows[sel[~okp]] = 0
        return bool(okp.all())

    def _read_one(self, z: int, off: int, out: np.ndarray, meta: np.ndarray | None) -> bool:
        """read() of one sector in plain integers (the 4 KiB random read)."""
        sb, sos, us, g = self.sb, self.sos, self.us, self.geo
        i, k = divmod(off, us)
        if i < self.good[z]:
            p = i
            for s in sorted(self.skips[z]):
                if p >= s:
                    p += 1
            ch, lun, blk, pg = self.lay.unit_at(z, p)
            pl, sec = divmod(k, g.nsectors)
            st, pdata, poob = self.core.read(ch, lun, blk, pl, pg)
            tries = 1
            while st is MediaStatus.ECC and tries < READ_TRIES:
                self.counters["read_retries"] += 1
                st, pdata, poob = self.core.read(ch, lun, blk, pl, pg)
                tries += 1
            if self.volt.timing.enabled:
                self.done = max(self.done, self.volt.charge(MediaOp.READ, ch, lun, g.page_nbytes, self.now, pg))
            out[:sb] = pdata[sec * sb:(sec + 1) * sb]
            if meta is not None:
                meta[:sos] = poob[sec * sos:(sec + 1) * sos]
            return st is MediaStatus.OK
        if i == self.good[z] and k < self.buffered(z):
            row = self.row[z]
            out[:sb] = self.buf[row, k * sb:(k + 1) * sb]
            if meta is not None:
                meta[:sos] = self.buf_meta[row, k * sos:(k + 1) * sos]
            return True
        out[:sb] = 0
        if meta is not None:
            meta[:sos] = 0
        return True

    # ------------------------------------------------------------ resets
    def erase(self, z: int) -> bool:
        """Erase the zone's blocks and clear its record; False when a block failed to erase
        (it is grown bad now, and the zone offline). A cut inside leaves the reset due."""
        lay, g = self.lay, self.geo
        r = self.record(z)
        self._mutating()
        r["op"] = OP_RESET
        chs, luns, blk = lay.luns(z)
        npl = g.nplanes
        ch = np.repeat(np.array(chs), npl)
        lun = np.repeat(np.array(luns), npl)
        st = self.core.erase_blocks(ch, lun, np.full(ch.size, blk), np.tile(np.arange(npl), len(chs)))
        self._charge(MediaOp.ERASE, np.array(chs), np.array(luns), np.zeros(len(chs), np.int64), 0)
        self.counters["resets"] += 1
        failed = bool((st != _OK).any())
        self.rec[self.row[z]] = np.zeros((), ZONE_RECORD)
        self.phys[z] = self.good[z] = 0
        self.skips[z], self.unrecorded[z], self.reset_due[z], self.ragged[z] = [], [], False, False
        if failed:
            self.bad[z] = True
            r["state"] = ZoneState.OFFLINE
            self.counters["reset_fails"] += 1
            log.warning("ZNS zone %d: a block failed to erase: the zone is offline", z)
        return not failed

    # ------------------------------------------------------------ timing
    def _charge(self, op, ch, lun, pg, nbytes_each) -> None:
        if not self.volt.timing.enabled:
            return
        done = self.done
        for c, lu, p in zip(np.asarray(ch).tolist(), np.asarray(lun).tolist(), np.asarray(pg).tolist()):
            done = max(done, self.volt.charge(op, c, lu, nbytes_each, self.now, p))
        self.done = done
