"""Open-Channel SSD 2.0 mode (`spec="2.0"`, lnvm > 0): chunks over the same VOLT media and
timing as the 1.2 mode (Open-Channel SSD specification 2.0; Linux 4.17+ lightnvm).

The host addresses logical blocks (LBAs: group, PU, chunk, logical block) with vector
commands of up to 64 LBAs, each completion carrying a bitmap of the LBAs that failed:

- reset (0x90) frees a closed chunk (a chunk whose programs failed goes offline
  instead; an erase that fails takes it offline too); free and open chunks cannot be
  reset (INVALID_RESET), offline ones neither (OFFLINE_CHUNK). MPTR, when given,
  receives the chunks' descriptors after the reset;
- write (0x91) only at a chunk's write pointer, in whole ws_min units, to a free or open
  chunk (else OUT_OF_ORDER_WRITE, or INVALID_FIELD for a partial unit), 16 bytes of OOB
  per LBA from MPTR. A program that fails consumes its unit: WRITE_NEXT_UNIT, the chunk
  stays open; the EARLY_CLOSE-th failure in a chunk closes it early (CHUNK_EARLY_CLOSE,
  the command's later LBAs for it not written);
- read (0x92) below the write pointer, except the last mw_cunits logical blocks of an
  open chunk (the device's write cache): those, and anything at or past the write
  pointer, are UNWRITTEN_BLOCK; an offline chunk OFFLINE_CHUNK. An ECC error is retried
  once inside the device: a read that succeeds so is HIGH_ECC (the data is good, refresh
  it), one that does not UNRECOVERED_READ;
- copy (0x93) reads source LBAs (cdw10-11) and writes them, OOB included, at destination
  LBAs (cdw14-15) under the write rules, without the data crossing the bus.

Admin: geometry (0xE2, major version 2), the chunk information log (0xCA) and the chunk
notification log (0xD0, with an asynchronous event), OX's set-target (0xC1). No bad
block table commands: a 2.0 device owns bad blocks and reports them as offline chunks.
Time is charged to the timing model as the 1.2 mode charges it: one multi-plane page
per unit programmed or read, one erase per chunk reset.
"""
import logging

import numpy as np

from ...machine.dma import DmaError
from ...volt import MediaOp, MediaStatus
from ...wire import (MAX_LBAS, AdminOpc, BlockState, ChunkOpc, ChunkState, IdNs, MediaMode,
                     NotifyMask, NotifyState, Ocssd2LogPage, Status)
from ..core import MmgrCmd
from ..errors import CommandError
from ..identity import MAX_IO_NBYTES, identify_controller, identify_namespace
from ..mode import DeviceMode
from ..prp import Transfer
from ..target import set_target
from .chunks import EARLY_CLOSE, Chunks
from .identity import WIT, Lbaf, WriteRules, geometry20
from .notices import Notices

log = logging.getLogger(__name__)

_OK = int(MediaStatus.OK)
_ECC = int(MediaStatus.ECC)
_READ = int(ChunkOpc.VECTOR_READ)
_WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR
_UNWRITTEN = Status.UNWRITTEN_BLOCK | Status.DNR
_OFFLINE = Status.OCSSD_OFFLINE_CHUNK | Status.DNR
_UNRECOVERED = Status.UNRECOVERED_READ | Status.DNR
_HIGH_ECC = int(Status.OCSSD_HIGH_ECC)
# which status a command with LBAs that failed differently reports: the worst
_SEVERITY = {0: 0, _HIGH_ECC: 1, int(_UNWRITTEN): 2, int(_OFFLINE): 3, int(_UNRECOVERED): 4,
             int(Status.OCSSD_WRITE_NEXT_UNIT | Status.DNR): 5, int(Status.OCSSD_CHUNK_EARLY_CLOSE | Status.DNR): 6,
             int(Status.OCSSD_INVALID_RESET | Status.DNR): 7}


def _bitmap(failed: np.ndarray) -> int:
    """The 64-bit completion bitmap: bit i set when LBA i of the command failed."""
    return int.from_bytes(np.packbits(failed.astype(bool), bitorder="little").tobytes(), "little")


def _worst(codes: np.ndarray) -> int:
    vals = np.unique(codes[codes != 0]).tolist()
    return max(vals, key=lambda c: _SEVERITY.get(c, 8)) if vals else 0


class Ocssd2Mode(DeviceMode):
    """Open-Channel SSD 2.0 on VOLT. Chunk state is VOLT's (chunks.Chunks); the mode adds
    the command rules, the notification log and the counters."""

    media_mode = MediaMode.OPEN_CHANNEL

    def __init__(self, core, dma):
        super().__init__(core.volt.timing)
        self.core, self.volt, self.dma = core, core.volt, dma
        self.tracer = core.tracer
        self.geo = g = self.volt.geo
        self.rules = WriteRules(g)
        self.lbaf = Lbaf(g)
        self.sector_nbytes = g.sector_nbytes
        self.chunks = Chunks(self.volt, self.lbaf)
        self.notices = Notices()
        self._wit_told: dict = {}                 # chunk -> wear index a notification named
        self.counters = dict(resets=0, went_offline=0, invalid_resets=0, write_fails=0, early_closes=0,
                             out_of_order_writes=0, unwritten_reads=0, high_ecc_reads=0, unrecovered_reads=0,
                             copies=0, settled_chunks=0)
        if not self.volt.read_only:              # power-on: planes a cut left apart agree again
            n = self.chunks.settle(core)
            if n:
                self.chunks.count_fails()
                self.counters["settled_chunks"] = n
        self._ws, self._nsec, self._secb = self.rules.ws_min, g.nsectors, g.sector_nbytes

    # ------------------------------------------------------------ the controller's hook
    @property
    def on_event(self):
        return self.notices.raise_event

    @on_event.setter
    def on_event(self, fn) -> None:
        self.notices.raise_event = fn

    # ------------------------------------------------------------ identify and admin
    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)

    def identify_namespace(self) -> bytes:
        """4 KiB LBAs with sos bytes of metadata each (2.0 leaves the OOB size to the LBA format)."""
        ns = IdNs.from_buffer_copy(identify_namespace(self.geo.total_sectors, lnvm=True))
        ns.lbaf[0].ms = self.geo.meta_nbytes
        return bytes(ns)

    def admin_commands(self) -> dict:
        return {AdminOpc.NVM_IDENTITY: self.geometry_cmd, AdminOpc.OX_SET_TARGET: self.set_target}

    def log_pages(self) -> dict:
        return {Ocssd2LogPage.CHUNK_INFO: self.chunk_log, Ocssd2LogPage.CHUNK_NOTIFICATION: self.notices.log}

    def geometry_cmd(self, cmd):
        data = geometry20(self.geo, self.timing.nand, self.rules, self.lbaf)
        Transfer(self.dma, cmd.prp1, cmd.prp2, len(data)).write(np.frombuffer(data, np.uint8))
        return Status.SUCCESS, 0

    def chunk_log(self) -> bytes:
        return self.chunks.descriptors().tobytes()

    def set_target(self, cmd):
        return set_target(self.dma, self.volt, cmd)

    # ------------------------------------------------------------ power, reports
    def reset(self) -> None:
        self.volt.flush()

    def shutdown(self) -> None:
        """Nothing of the mode's own: chunk state is on the media."""

    def stats(self) -> dict:
        return dict(self.counters)

    # ------------------------------------------------------------ commands
    def io(self, cmd, arrival_ns):
        op = cmd.opcode
        if op == _READ and not cmd.cdw12 & 0xFFFF and self.tracer is None and cmd.nsid == 1:
            return self._read_single(cmd, arrival_ns)
        if op not in (ChunkOpc.VECTOR_RESET, ChunkOpc.VECTOR_WRITE, ChunkOpc.VECTOR_READ, ChunkOpc.VECTOR_COPY):
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1:
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        if op != _READ and self.volt.read_only:
            return _WRITE_PROTECTED, 0, arrival_ns
        n = (cmd.cdw12 & 0xFFFF) + 1
        if n > MAX_LBAS:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"{n} LBAs (at most {MAX_LBAS})")
        f = self._lbas(cmd.spba, n)
        if op == ChunkOpc.VECTOR_RESET:
            self._trace(cmd, f, None)
            return self._reset(cmd, f, arrival_ns)
        if op == ChunkOpc.VECTOR_COPY:
            self._trace(cmd, f, None)
            return self._copy(cmd, f, self._lbas(cmd.cdw14 | (cmd.cdw15 << 32), n), arrival_ns)
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, n * self._secb)
        meta = None
        if cmd.mptr:
            try:
                meta = self.dma.view(cmd.mptr, n * self.geo.meta_nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        self._trace(cmd, f, xfer)
        if op == ChunkOpc.VECTOR_WRITE:
            return self._write(cmd, f, xfer, meta, arrival_ns)
        return self._read(cmd, f, xfer, meta, arrival_ns)

    def _lbas(self, spba: int, n: int) -> np.ndarray:
        """(n, 4) group, PU, chunk, logical block of the command's LBAs (the LBA itself for
        one, else the list at spba); LBA_RANGE when one lies outside the format."""
        if n == 1:
            one = self.lbaf.decode_one(spba)
            if one is None:
                raise CommandError(Status.LBA_RANGE | Status.DNR, f"LBA 0x{spba:x} outside the geometry", failed=1)
            return np.array([one], dtype=np.int64)
        try:
            raw = self.dma.read_u64s(spba, n)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        f = self.lbaf.decode(raw)
        if f is None:
            raise CommandError(Status.LBA_RANGE | Status.DNR, "an LBA lies outside the geometry",
                               failed=(1 << n) - 1)
        return f

    def _where(self, f: np.ndarray):
        """(ch, lun, blk, pl, pg, sec) arrays of the logical blocks in f."""
        k = f[:, 3]
        unit, j = np.divmod(k, self._ws)
        pl, sec = np.divmod(j, self._nsec)
        return f[:, 0], f[:, 1], f[:, 2], pl, unit, sec

    # ------------------------------------------------------------ reads
    def _classify(self, f: np.ndarray) -> np.ndarray:
        """Per LBA: 0 readable, else the status it fails with (chunk state and write pointer)."""
        codes = np.zeros(f.shape[0], dtype=np.int64)
        mw = self.rules.mw_cunits
        keys = (f[:, 0] * self.geo.nluns + f[:, 1]) * self.geo.nblocks + f[:, 2]
        for key in np.unique(keys).tolist():
            ch, rest = divmod(key, self.geo.nluns * self.geo.nblocks)
            lun, blk = divmod(rest, self.geo.nblocks)
            st, wp = self.chunks.state(ch, lun, blk)
            sel = keys == key
            if st == ChunkState.OFFLINE:
                codes[sel] = _OFFLINE
                continue
            limit = wp - mw if st == ChunkState.OPEN else wp
            codes[sel & (f[:, 3] >= max(limit, 0))] = _UNWRITTEN
            if self.chunks.spoiled[ch, lun, blk]:
                idx = np.flatnonzero(sel & (codes == 0))
                bad = self.chunks.unit_spoiled(ch, lun, blk, f[idx, 3] // self._ws)
                codes[idx[bad]] = _UNRECOVERED
        return codes

    def _gather(self, f: np.ndarray, arrival: int):
        """Read the logical blocks of f: (data (n, sector bytes), oob (n, sos), codes,
        completion time). Data and OOB are zeros where the code is not 0 or HIGH_ECC."""
        n = f.shape[0]
        g = self.geo
        secb, sos, nsec = self._secb, g.meta_nbytes, self._nsec
        codes = self._classify(f)
        self.counters["unwritten_reads"] += int(np.count_nonzero(codes == _UNWRITTEN))
        data = np.zeros((n, secb), dtype=np.uint8)
        oob = np.zeros((n, sos), dtype=np.uint8)
        ok = np.flatnonzero(codes == 0)
        done = arrival
        if ok.size == 0:
            return data, oob, codes, done
        ch, lun, blk, pl, pg, sec = (a[ok] for a in self._where(f))
        page = (((ch * g.nluns + lun) * g.nblocks + blk) * g.npages + pg) * g.nplanes + pl
        upage, first, inv = np.unique(page, return_index=True, return_inverse=True)
        uch, ulun, ublk, upl, upg = ch[first], lun[first], blk[first], pl[first], pg[first]
        st, rows = self.core.read_pages(uch, ulun, ublk, upl, upg)
        done = self._charge_reads(uch, ulun, ublk, upg, arrival, done)
        retry = np.flatnonzero(st == _ECC)
        high = np.zeros(upage.size, dtype=bool)
        if retry.size:                                # the device's read retry
            st2, _ = self.core.read_pages(uch[retry], ulun[retry], ublk[retry], upl[retry], upg[retry])
            done = self._charge_reads(uch[retry], ulun[retry], ublk[retry], upg[retry], arrival, done)
            st[retry] = st2
            high[retry[st2 == _OK]] = True
        good = (st == _OK)[inv]
        r = rows[inv]
        data[ok[good]] = self.volt.data_rows.reshape(-1, secb)[r[good] * nsec + sec[good]]
        oob[ok[good]] = self.volt.oob_rows[:, :nsec * sos].reshape(-1, nsec, sos)[r[good], sec[good]]
        codes[ok[~good]] = _UNRECOVERED
        codes[ok[good & high[inv]]] = _HIGH_ECC
        self._ecc_notices(f, codes)
        return data, oob, codes, done

    def _charge_reads(self, ch, lun, blk, pg, arrival: int, done: int) -> int:
        """One sense and transfer per multi-plane page read, in order (the 1.2 mode's charge)."""
        if not self.timing.enabled:
            return done
        pnb = self.geo.page_nbytes
        last, pending = None, 0
        for u in zip(ch.tolist(), lun.tolist(), blk.tolist(), pg.tolist()):
            if u != last and last is not None:
                done = max(done, self.volt.charge(MediaOp.READ, last[0], last[1], pending, arrival, last[3]))
                pending = 0
            last, pending = u, pending + pnb
        return max(done, self.volt.charge(MediaOp.READ, last[0], last[1], pending, arrival, last[3]))

    def _ecc_notices(self, f: np.ndarray, codes: np.ndarray) -> None:
        for state, code in ((NotifyState.ERROR_RATE_HIGH, _HIGH_ECC), (NotifyState.UNRECOVERABLE, int(_UNRECOVERED))):
            hit = np.flatnonzero(codes == code)
            if hit.size:
                self.counters["high_ecc_reads" if code == _HIGH_ECC else "unrecovered_reads"] += int(hit.size)
            for i in hit.tolist():
                ch, lun, blk, k = f[i].tolist()
                self.notices.post(self.lbaf.slba(ch, lun, blk, k), state, NotifyMask.LOGICAL_BLOCK)

    def _read(self, cmd, f, xfer, meta, arrival):
        data, oob, codes, done = self._gather(f, arrival)
        xfer.write(data.reshape(-1))
        if meta is not None:
            meta[:] = oob.reshape(-1)
        self.bytes_read += xfer.nbytes
        return _worst(codes), _bitmap(codes != 0), done

    def _read_single(self, cmd, arrival):
        """One LBA, untraced: the 4 KiB random read, in plain integers."""
        lba = cmd.cdw10 | (cmd.cdw11 << 32)
        one = self.lbaf.decode_one(lba)
        if one is None:
            raise CommandError(Status.LBA_RANGE | Status.DNR, f"LBA 0x{lba:x} outside the geometry", failed=1)
        f = np.array([one], dtype=np.int64)
        secb = self._secb
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, secb)
        meta = None
        if cmd.mptr:
            try:
                meta = self.dma.view(cmd.mptr, self.geo.meta_nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        ch, lun, blk, k = one
        st, wp = self.chunks.state(ch, lun, blk)
        if (st == ChunkState.OFFLINE or k >= (wp - self.rules.mw_cunits if st == ChunkState.OPEN else wp)
                or self.chunks.spoiled[ch, lun, blk]):
            return self._read(cmd, f, xfer, meta, arrival)
        unit, j = divmod(k, self._ws)
        pl, sec = divmod(j, self._nsec)
        self.core.submit(cmd, MmgrCmd.READ_PG, ch)
        status, pdata, poob = self.core.read(ch, lun, blk, pl, unit)
        code, tries = Status.SUCCESS, 1
        if status is not MediaStatus.OK:                  # the device's read retry
            status, pdata, poob = self.core.read(ch, lun, blk, pl, unit)
            code, tries = (_HIGH_ECC if status is MediaStatus.OK else _UNRECOVERED), 2
            self._ecc_notices(f, np.array([code]))
        sink = xfer.sink()
        if sink is not None:
            sink[:] = pdata[sec * secb:(sec + 1) * secb]
        else:
            xfer.write(pdata[sec * secb:(sec + 1) * secb])
        if meta is not None:
            sos = self.geo.meta_nbytes
            meta[:] = poob[sec * sos:(sec + 1) * sos]
        self.bytes_read += secb
        done = arrival
        for _ in range(tries) if self.timing.enabled else ():
            done = self.volt.charge(MediaOp.READ, ch, lun, self.geo.page_nbytes, arrival, unit)
        return code, int(code != Status.SUCCESS), done

    # ------------------------------------------------------------ writes
    def _plan(self, f: np.ndarray):
        """The runs a write (or a copy's destination) programs: [(ch, lun, blk, first unit,
        units, first index in the command)], checked against every chunk's state and write
        pointer as the runs before it leave them. CommandError, nothing written, when any
        run breaks a rule."""
        n = f.shape[0]
        ws = self._ws
        brk = np.ones(n, dtype=bool)
        brk[1:] = (f[1:, :3] != f[:-1, :3]).any(axis=1) | (f[1:, 3] != f[:-1, 3] + 1)
        starts = np.flatnonzero(brk).tolist() + [n]
        runs, wps = [], {}
        every = (1 << n) - 1
        for a, b in zip(starts[:-1], starts[1:]):
            ch, lun, blk, k0 = f[a].tolist()
            key = (ch, lun, blk)
            if key not in wps:
                wps[key] = self.chunks.state(ch, lun, blk)
            st, wp = wps[key]
            if st not in (ChunkState.FREE, ChunkState.OPEN) or k0 != wp:
                self.counters["out_of_order_writes"] += 1
                why = (f"chunk {ch}/{lun}/{blk} is {st.name.lower()}" if st not in (ChunkState.FREE, ChunkState.OPEN)
                       else f"LBA {k0} of chunk {ch}/{lun}/{blk} is not its write pointer {wp}")
                raise CommandError(Status.OCSSD_OUT_OF_ORDER_WRITE | Status.DNR, why, failed=every)
            if (b - a) % ws:
                raise CommandError(Status.INVALID_FIELD | Status.DNR,
                                   f"a write covers whole units of ws_min = {ws} logical blocks", failed=every)
            wp += b - a
            wps[key] = (ChunkState.CLOSED if wp >= self.rules.clba else ChunkState.OPEN, wp)
            runs.append((ch, lun, blk, k0 // ws, (b - a) // ws, a))
        return runs

    def _program(self, runs, data: np.ndarray, oob: np.ndarray | None, arrival: int):
        """Program the runs' units (data: n x sector bytes, in command order; oob n x sos or
        None): (per-LBA codes, completion time). Faultless media take every unit in one
        VOLT call; else unit by unit, so a chunk the device closes early takes no more."""
        g = self.geo
        n = data.shape[0]
        ws, npl = self._ws, g.nplanes
        pages = data.reshape(-1, g.page_nbytes)                 # one row per plane page, in order
        poob = None if oob is None else oob.reshape(-1, g.nsectors * g.meta_nbytes)
        codes = np.zeros(n, dtype=np.int64)
        done = arrival
        if self.volt.faultless:
            chs, luns, blks, pls, pgs = [], [], [], [], []
            for ch, lun, blk, u0, nu, _ in runs:
                units = np.repeat(np.arange(u0, u0 + nu), npl)
                m = units.size
                chs.append(np.full(m, ch)), luns.append(np.full(m, lun)), blks.append(np.full(m, blk))
                pls.append(np.tile(np.arange(npl), nu)), pgs.append(units)
            cat = np.concatenate
            st = self.core.program_pages(cat(chs), cat(luns), cat(blks), cat(pls), cat(pgs), pages, poob)
            if np.count_nonzero(st):                              # the NAND rules refused a page
                log.error("2.0: VOLT refused %d page(s) of a checked write", np.count_nonzero(st))
                bad_unit = (st.reshape(-1, npl) != _OK).any(axis=1)
                codes[np.repeat(bad_unit, ws)] = Status.OCSSD_WRITE_NEXT_UNIT | Status.DNR
            for ch, lun, blk, u0, nu, _ in runs:
                for u in range(u0, u0 + nu):
                    done = self._charge_program(ch, lun, u, arrival, done)
            return codes, done
        for ch, lun, blk, u0, nu, a in runs:
            for i in range(nu):
                lo = a + i * ws
                if self.chunks.fails[ch, lun, blk] >= EARLY_CLOSE:       # closed early: no more
                    codes[lo:a + nu * ws] = Status.OCSSD_CHUNK_EARLY_CLOSE | Status.DNR
                    break
                u = u0 + i
                rows = slice(lo // g.nsectors, lo // g.nsectors + npl)
                st = self.core.program_pages([ch] * npl, [lun] * npl, [blk] * npl, list(range(npl)), [u] * npl,
                                             pages[rows], None if poob is None else poob[rows])
                done = self._charge_program(ch, lun, u, arrival, done)
                if np.count_nonzero(st):
                    self.chunks.fails[ch, lun, blk] += 1
                    self.chunks.spoiled[ch, lun, blk] += 1
                    self.counters["write_fails"] += 1
                    early = self.chunks.fails[ch, lun, blk] >= EARLY_CLOSE
                    if early:
                        self.counters["early_closes"] += 1
                    codes[lo:lo + ws] = (Status.OCSSD_CHUNK_EARLY_CLOSE | Status.DNR if early
                                         else Status.OCSSD_WRITE_NEXT_UNIT | Status.DNR)
        return codes, done

    def _charge_program(self, ch: int, lun: int, unit: int, arrival: int, done: int) -> int:
        if not self.timing.enabled:
            return done
        return max(done, self.volt.charge(MediaOp.PROGRAM, ch, lun, self.geo.nplanes * self.geo.page_nbytes,
                                          arrival, unit))

    def _write(self, cmd, f, xfer, meta, arrival):
        runs = self._plan(f)
        n = f.shape[0]
        self.core.submit(cmd, MmgrCmd.WRITE_PG, int(f[0, 0]))
        data = xfer.read().reshape(n, self._secb)
        oob = None if meta is None else meta.reshape(n, self.geo.meta_nbytes)
        codes, done = self._program(runs, data, oob, arrival)
        self.bytes_written += xfer.nbytes
        return _worst(codes), _bitmap(codes != 0), done

    # ------------------------------------------------------------ copy
    def _copy(self, cmd, src, dst, arrival):
        runs = self._plan(dst)
        data, oob, codes, done = self._gather(src, arrival)
        failed = (codes != 0) & (codes != _HIGH_ECC)
        if failed.any():
            return _worst(codes), _bitmap(failed), done
        self.core.submit(cmd, MmgrCmd.WRITE_PG, int(dst[0, 0]))
        wcodes, done = self._program(runs, data, oob, done)
        self.counters["copies"] += 1
        codes = np.where(wcodes != 0, wcodes, codes)
        return _worst(codes), _bitmap(codes != 0), done

    # ------------------------------------------------------------ reset
    def _reset(self, cmd, f, arrival):
        g = self.geo
        npl = g.nplanes
        n = f.shape[0]
        codes = np.zeros(n, dtype=np.int64)
        done = arrival
        mean = None
        self.core.submit(cmd, MmgrCmd.ERASE_BLK, int(f[0, 0]))
        for i, (ch, lun, blk, _) in enumerate(f.tolist()):
            st, _ = self.chunks.state(ch, lun, blk)
            if st == ChunkState.OFFLINE:
                codes[i] = _OFFLINE
                continue
            if st != ChunkState.CLOSED:
                codes[i] = Status.OCSSD_INVALID_RESET | Status.DNR
                self.counters["invalid_resets"] += 1
                continue
            if self.chunks.fails[ch, lun, blk]:          # its programs failed: the device retires it
                self.volt.set_block_states([ch] * npl, [lun] * npl, [blk] * npl, list(range(npl)),
                                           int(BlockState.GRWN_BAD))
                self.counters["went_offline"] += 1
                codes[i] = _OFFLINE
                continue
            est = self.core.erase_blocks([ch] * npl, [lun] * npl, [blk] * npl, list(range(npl)))
            if self.timing.enabled:
                done = max(done, self.volt.charge(MediaOp.ERASE, ch, lun, 0, arrival))
            if np.count_nonzero(est):                     # VOLT marked the failing planes grown bad
                self.counters["went_offline"] += 1
                codes[i] = _OFFLINE
                continue
            self.chunks.fails[ch, lun, blk] = self.chunks.spoiled[ch, lun, blk] = 0
            self.counters["resets"] += 1
            mean = self._wear_notice(ch, lun, blk, mean)
        if cmd.mptr:
            self._descriptors_to(cmd.mptr, f)
        return _worst(codes), _bitmap(codes != 0), done

    def _wear_notice(self, ch: int, lun: int, blk: int, mean):
        """A chunk whose wear index is more than wit above the average: one notification
        per new index value."""
        wli = self.chunks.wli(ch, lun, blk)
        if wli <= self._wit_told.get((ch, lun, blk), -1):
            return mean
        if mean is None:
            mean = self.chunks.mean_wli()
        if wli > mean + WIT:
            self._wit_told[(ch, lun, blk)] = wli
            self.notices.post(self.lbaf.slba(ch, lun, blk), NotifyState.WIT_EXCEEDED, NotifyMask.CHUNK)
        return mean

    def _descriptors_to(self, mptr: int, f: np.ndarray) -> None:
        """The reset chunks' descriptors after the reset, to the buffer at MPTR."""
        g = self.geo
        idx = (f[:, 0] * g.nluns + f[:, 1]) * g.nblocks + f[:, 2]
        desc = self.chunks.descriptors()[idx]
        try:
            self.dma.write(mptr, desc.view(np.uint8))
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None

    # ------------------------------------------------------------ trace
    def _trace(self, cmd, f, xfer) -> None:
        if self.tracer is None:
            return
        secb, sos = self._secb, self.geo.meta_nbytes
        n = f.shape[0]
        prps = []
        if xfer is not None:
            base = [int(p) for p in xfer.pages]
            prps = [base[(xfer.offset + i * secb) // 4096] + (xfer.offset + i * secb) % 4096 for i in range(n)]
        metas = [(cmd.mptr + i * sos) if cmd.mptr else 0 for i in range(n)] if xfer is not None else []
        where = list(zip(*(a.tolist() for a in self._where(f))))
        self.tracer.io_cmd(cmd.seq, cmd, n, n * secb if xfer is not None else 0,
                           n * sos if cmd.mptr and xfer is not None else 0, where, prps, metas)
