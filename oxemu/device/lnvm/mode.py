"""LNVM FTL (lnvm > 0): open-channel 1.2 physical commands passed straight to VOLT with
the NAND rules enforced (SPEC 5, 6). The host owns placement; the device checks and moves.

Read-only media (the label says so, or the disk file was opened read-only): erases,
writes, bad block table changes and label changes complete NS_WRITE_PROTECTED; reads work.
"""
import numpy as np

from ...machine.dma import DmaError
from ...volt import MediaOp, MediaStatus
from ...wire import MAX_PPAS, AdminOpc, BbTableHeader, BlockState, MediaMode, NvmOpc, PMode, Status, BBT_MAGIC
from ..core import MmgrCmd
from ..errors import CommandError
from ..identity import MAX_IO_NBYTES, identify_controller, identify_namespace, nvm_identity
from ..mode import DeviceMode
from ..target import set_target
from .runs import Runs
from ..prp import Transfer

_FAIL_STATUS = {
    MediaStatus.EMPTY: Status.NVM_EMPTY_PAGE,
    MediaStatus.PROGRAM_FAIL: Status.NVM_FAIL_WRITE,
    MediaStatus.ERASE_FAIL: Status.NVM_FAIL_WRITE,
    MediaStatus.ECC: Status.NVM_FAIL_ECC,
}
_SEVERITY = {int(MediaStatus.EMPTY): 1, int(MediaStatus.PROGRAM_FAIL): 2,
             int(MediaStatus.ERASE_FAIL): 2, int(MediaStatus.ECC): 3}
_VALID_BB_STATES = {int(s) for s in BlockState}
_OK = int(MediaStatus.OK)
_PH_READ = int(NvmOpc.PH_READ)
_PH_WRITE = int(NvmOpc.PH_WRITE)
_PH_ERASE = int(NvmOpc.PH_ERASE)
_WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR


class LnvmMode(DeviceMode):
    """Open-channel mode: physical I/O, the LightNVM identity and bad block table commands,
    and OX's set-target command that records the host's target in the media label."""

    media_mode = MediaMode.OPEN_CHANNEL

    def __init__(self, core, dma):
        super().__init__(core.volt.timing)
        self.core = core
        self.volt = core.volt
        self.geo = self.volt.geo
        self.dma = dma
        self.tracer = core.tracer
        geo = self.geo
        f = geo.ppaf
        order = ("ch", "lun", "blk", "pl", "pg", "sec")
        self._offs = np.array([f[k][0] for k in order], dtype=np.uint64)
        self._masks = np.array([(1 << f[k][1]) - 1 for k in order], dtype=np.uint64)
        self._lims = np.array([geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes, geo.npages,
                               geo.nsectors], dtype=np.int64)
        self._sec_cycle = np.tile(np.arange(geo.nsectors), MAX_PPAS // geo.nsectors + 1)
        self._lim_list = self._lims.tolist()
        self._fields = [(int(o), int(m), int(lim)) for o, m, lim in zip(self._offs, self._masks, self._lims)]
        self._ppa_mask = (1 << geo.ppa_bits) - 1
        self._planes = {int(PMode.SNGL): 1, int(PMode.DUAL): 2, int(PMode.QUAD): 4}
        self.sector_nbytes = geo.sector_nbytes
        # the usual forms of a lone write or erase (_groups; Runs checks runs of writes by the
        # same): each unit's (block's) addresses are its first one's with these bits set, and
        # its first one has none of `lead`
        pl_bits, sec_bits = ((1 << f["pl"][1]) - 1) << f["pl"][0], ((1 << f["sec"][1]) - 1) << f["sec"][0]
        self._usual = {(_PH_WRITE, p): ([(q << f["pl"][0]) | (s << f["sec"][0]) for q in range(p)
                                         for s in range(geo.nsectors)], pl_bits | sec_bits)
                       for p in (1, 2, 4)}
        self._usual.update({(_PH_ERASE, p): ([q << f["pl"][0] for q in range(p)], pl_bits) for p in (1, 2, 4)})
        self._runs = Runs(self)

    # ------------------------------------------------------------------ identity
    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)

    def identify_namespace(self) -> bytes:
        return identify_namespace(self.geo.total_sectors, lnvm=True)

    def admin_commands(self) -> dict:
        return {AdminOpc.NVM_IDENTITY: self.nvm_identity,
                AdminOpc.NVM_GET_BBT: self.get_bbt,
                AdminOpc.NVM_SET_BBT: self.set_bbt,
                AdminOpc.OX_SET_TARGET: self.set_target}

    # ------------------------------------------------------------------ power
    def reset(self) -> None:
        self.volt.flush()

    def shutdown(self) -> None:
        """Nothing of the mode's own: the host target stops itself; the media is flushed."""

    def nvm_identity(self, cmd):
        data = nvm_identity(self.geo, self.timing.nand)
        Transfer(self.dma, cmd.prp1, cmd.prp2, len(data)).write(np.frombuffer(data, np.uint8))
        return Status.SUCCESS, 0

    # ------------------------------------------------------------------ addresses
    def decode(self, ppa: int):
        """(ch, lun, blk, pl, pg, sec) of a device PPA; INVALID_FIELD when out of geometry."""
        return tuple(int(v) for v in self.decode_many(np.array([ppa], dtype=np.uint64))[0])

    def decode_many(self, raw: np.ndarray) -> np.ndarray:
        """(n, 6) int64 array of ch, lun, blk, pl, pg, sec; one check for the whole list."""
        raw = raw.astype(np.uint64)
        if np.any(raw & np.uint64(~self._ppa_mask & 0xFFFFFFFFFFFFFFFF)):
            raise CommandError(Status.INVALID_FIELD | Status.DNR, "a PPA has bits beyond the format")
        f = ((raw[:, None] >> self._offs) & self._masks).astype(np.int64)
        if np.any(f >= self._lims):
            raise CommandError(Status.INVALID_FIELD | Status.DNR, "a PPA lies outside the geometry")
        return f

    def _ppas(self, cmd) -> np.ndarray:
        n = cmd.nlb + 1
        if n > MAX_PPAS:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"{n} addresses (at most {MAX_PPAS})")
        if n == 1:                 # the common single-sector command: no list, no numpy checks
            return np.array([self._decode_one(cmd.spba)], dtype=np.int64)
        try:
            raw = self.dma.read_u64s(cmd.spba, n)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        return self.decode_many(raw)

    def _decode_one(self, ppa: int) -> list:
        """[ch, lun, blk, pl, pg, sec] of one PPA, in plain integers."""
        if ppa & ~self._ppa_mask:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} has bits beyond the format")
        out = []
        for off, mask, lim in self._fields:
            v = (ppa >> off) & mask
            if v >= lim:
                raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} lies outside the geometry")
            out.append(v)
        return out

    def _pmode(self, cmd) -> int:
        pmode = cmd.control & 0x3
        planes = self._planes.get(pmode)
        if planes is None or planes > self.geo.nplanes:
            raise CommandError(Status.INVALID_FIELD | Status.DNR,
                               f"plane mode {pmode} not supported by a {self.geo.nplanes}-plane device")
        return planes

    # ------------------------------------------------------------------ I/O
    def io(self, cmd, arrival_ns):
        if cmd.opcode == _PH_READ and not cmd.cdw12 & 0xFFFF and self.tracer is None and cmd.nsid == 1:
            return self._read_single(cmd, arrival_ns)
        if cmd.opcode not in (NvmOpc.PH_ERASE, NvmOpc.PH_WRITE, NvmOpc.PH_READ):
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1:
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        if cmd.opcode != NvmOpc.PH_READ and self.volt.read_only:
            return _WRITE_PROTECTED, 0, arrival_ns
        if cmd.opcode != _PH_READ and self.tracer is None:
            heads = self._groups(cmd)
            if heads is not None:
                return (self._write_few if cmd.opcode == _PH_WRITE else self._erase_few)(cmd, heads, arrival_ns)
        f = self._ppas(cmd)
        planes = self._pmode(cmd)
        if cmd.opcode == NvmOpc.PH_ERASE:
            if self.tracer is not None:
                self._trace_cmd(cmd, f, None, 0)
            return self._erase(cmd, f, planes, arrival_ns)
        n = f.shape[0]
        nbytes = n * self.geo.sector_nbytes
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, nbytes)
        sos = self.geo.meta_nbytes
        meta = None
        if cmd.mptr:
            try:
                meta = self.dma.view(cmd.mptr, n * sos)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        if self.tracer is not None:
            self._trace_cmd(cmd, f, xfer, n * sos if meta is not None else 0)
        if cmd.opcode == NvmOpc.PH_WRITE:
            return self._write(cmd, f, planes, xfer, meta, arrival_ns)
        return self._read(cmd, f, xfer, meta, arrival_ns)

    # ------------------------------------------------------------------ runs of commands
    def io_run(self, ents, i: int, arrival_ns: int):
        """Execute the run of writes or reads starting at SQE record i at once (lnvm.runs):
        (k, (status, result, done) arrays) exactly as `io` one by one would answer those k
        commands, or (k, None) for k commands to run one by one instead."""
        return self._runs.run(ents, i, arrival_ns)

    @staticmethod
    def _check_planes(units: np.ndarray, pl: np.ndarray, planes: int, what: str) -> None:
        """Multi-plane commands cover each unit (block, or page) on planes 0..planes-1 once."""
        if planes == 1:
            return
        keys = units[:, 0]
        for c in range(1, units.shape[1]):
            keys = keys * 65536 + units[:, c]
        k = pl.size
        if k % planes == 0:               # the usual order: each unit's planes 0..p-1 in a row
            grouped = keys.reshape(-1, planes)
            heads = grouped[:, 0]
            if (np.array_equal(pl, np.tile(np.arange(planes), k // planes))
                    and np.all(grouped == heads[:, None]) and np.unique(heads).size == heads.size):
                return
        uk, counts = np.unique(keys, return_counts=True)
        ok = (np.all(pl < planes) and np.all(counts == planes)
              and np.unique(keys * 8 + pl).size == keys.size)
        if not ok:
            raise CommandError(Status.INVALID_FIELD | Status.DNR,
                               f"{what} in {planes}-plane mode does not cover planes 0-{planes - 1} of each unit")

    def _outcome(self, st: np.ndarray, per: int, n: int):
        """(NVMe status, failed-address bitmap) from per-MMGR statuses covering `per` addresses
        each. The status is the worst among the failures (an ECC error outranks an empty
        page), so a host that sees 0x42FF knows every failed address is merely empty."""
        bad = np.flatnonzero(st != _OK)
        if bad.size == 0:
            return Status.SUCCESS, 0
        failed = 0
        unit = (1 << per) - 1
        for i in bad.tolist():
            failed |= unit << (i * per)
        worst = max(np.unique(st[bad]).tolist(), key=_SEVERITY.__getitem__)
        return _FAIL_STATUS[MediaStatus(worst)], failed & ((1 << n) - 1)

    def _charge(self, op, rows: np.ndarray, nbytes_each: int, arrival: int, unit=(0, 1, 2, 4)) -> int:
        """Charge each multi-plane unit once, in order (a page on every plane, or a block for
        erases); the command ends with the last. `rows` holds one decoded PPA per MMGR."""
        if not self.timing.enabled:
            return arrival
        charge = self.timing.charge
        done, last, pending = arrival, None, 0
        for u in rows[:, list(unit)].tolist():
            if u != last and last is not None:
                done = max(done, charge(op, last[0], last[1], pending, arrival, last[-1]))
                pending = 0
            last = u
            pending += nbytes_each
        return max(done, charge(op, last[0], last[1], pending, arrival, last[-1]))

    def _charges(self, op, rows: np.ndarray, at: np.ndarray, nbytes_each: int, arrival: int) -> np.ndarray:
        """_charge for a run of page commands at once (command c: rows at[c]:at[c + 1]):
        the same charges in the same order, the units found in one pass."""
        k = at.size - 1
        if not self.timing.enabled:
            return np.full(k, arrival, dtype=np.int64)
        u = rows[:, [0, 1, 2, 4]]
        n = u.shape[0]
        head = np.empty(n, dtype=bool)
        head[0] = True
        np.any(u[1:] != u[:-1], axis=1, out=head[1:])
        head[at[:-1]] = True                             # a unit never spans two commands
        heads = np.flatnonzero(head)
        hs = heads.tolist()
        hs.append(n)
        bounds = at.tolist()
        charge = self.timing.charge
        out, c, nxt, done = [], 0, bounds[1], arrival
        for j, (ch, lun, _, pg) in enumerate(u[heads].tolist()):
            h = hs[j]
            if h >= nxt:                                 # the next command's first unit
                out.append(done)
                c += 1
                nxt, done = bounds[c + 1], arrival
            done = max(done, charge(op, ch, lun, (hs[j + 1] - h) * nbytes_each, arrival, pg))
        out.append(done)
        return np.array(out, dtype=np.int64)

    def _erase(self, cmd, f, planes, arrival):
        ch, lun, blk, pl = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
        self._check_planes(f[:, :3], pl, planes, "erase")
        self.core.submit(cmd, MmgrCmd.ERASE_BLK, int(ch[0]))
        st = self.core.erase_blocks(ch, lun, blk, pl)
        status, failed = self._outcome(st, 1, f.shape[0])
        return status, failed, self._charge(MediaOp.ERASE, f, 0, arrival, unit=(0, 1, 2))

    def _write(self, cmd, f, planes, xfer, meta, arrival):
        geo = self.geo
        nsec = geo.nsectors
        n = f.shape[0]
        pages = f[::nsec]
        if n % nsec or not (np.array_equal(f[:, 5], self._sec_cycle[:n])
                            and np.all(f[:, :5].reshape(-1, nsec, 5) == pages[:, None, :5])):
            raise CommandError(Status.INVALID_FIELD | Status.DNR,
                               f"a write covers whole pages: sectors 0-{nsec - 1} of each page, in order")
        units = pages[:, [0, 1, 2, 4]]                         # ch, lun, blk, pg
        self._check_planes(units, pages[:, 3], planes, "write")
        data = xfer.read().reshape(-1, geo.page_nbytes)
        oob = meta.reshape(-1, nsec * geo.meta_nbytes) if meta is not None else None
        self.core.submit(cmd, MmgrCmd.WRITE_PG, int(pages[0, 0]))
        st = self.core.program_pages(pages[:, 0], pages[:, 1], pages[:, 2], pages[:, 3], pages[:, 4], data, oob)
        status, failed = self._outcome(st, nsec, n)
        self.bytes_written += xfer.nbytes
        return status, failed, self._charge(MediaOp.PROGRAM, pages, geo.page_nbytes, arrival)

    def _groups(self, cmd):
        """A lone write or erase in the usual form, checked on its raw PPAs in plain
        integers (pblk's smeta, a single unit, a line's erase): each write unit (page on
        planes 0..p-1, sectors in order) or block (planes 0..p-1) its first address's
        plus the plane (and sector) bits, no unit twice, all inside the geometry. Returns
        the decoded first addresses [ch, lun, blk, pl, pg, sec], or None for any other
        command: _ppas and _write/_erase then check it (and answer its error)."""
        n = (cmd.cdw12 & 0xFFFF) + 1
        planes = self._planes.get((cmd.cdw12 >> 16) & 0x3)
        if planes is None or planes > self.geo.nplanes or n > MAX_PPAS:
            return None
        steps, lead = self._usual[cmd.opcode, planes]
        per = len(steps)
        spba = cmd.cdw10 | (cmd.cdw11 << 32)
        if n % per or (n > 1 and (spba & 7 or spba + 8 * n > self.dma.size)):
            return None
        raw = self.dma.words[spba >> 3:(spba >> 3) + n].tolist() if n > 1 else [spba]
        lead |= ~self._ppa_mask
        heads = []
        for i in range(0, n, per):
            h = raw[i]
            if h & lead or raw[i:i + per] != [h | s for s in steps]:
                return None
            f = [(h >> off) & mask for off, mask, _ in self._fields]
            if any(v >= lim for v, lim in zip(f, self._lim_list)):
                return None
            heads.append(f)
        unit = slice(0, 5) if cmd.opcode == _PH_WRITE else slice(0, 3)     # (ch, lun, blk, 0, pg) or a block
        return heads if len({tuple(f[unit]) for f in heads}) == len(heads) else None

    def _write_few(self, cmd, heads, arrival):
        """_write for the units from _groups: the same transfer, program, status and
        charges, in plain integers."""
        geo, dma = self.geo, self.dma
        nsec, pnb = geo.nsectors, geo.page_nbytes
        planes = self._planes[(cmd.cdw12 >> 16) & 0x3]
        n = len(heads) * planes * nsec
        if n > 1:
            dma.bytes_read += 8 * n                          # the PPA list, as _ppas counts it
        xfer = Transfer(dma, cmd.prp1, cmd.prp2, n * geo.sector_nbytes)
        oob = None
        if cmd.mptr:
            try:
                oob = dma.view(cmd.mptr, n * geo.meta_nbytes).reshape(-1, nsec * geo.meta_nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        ch, lun, blk, pl, pg = zip(*[(f[0], f[1], f[2], q, f[4]) for f in heads for q in range(planes)])
        st = self.core.program_pages(ch, lun, blk, pl, pg, xfer.read().reshape(-1, pnb), oob)
        status, failed = self._outcome(st, nsec, n) if st.any() else (Status.SUCCESS, 0)
        self.bytes_written += xfer.nbytes
        done = arrival
        if self.timing.enabled:
            charge = self.timing.charge
            for f in heads:
                done = max(done, charge(MediaOp.PROGRAM, f[0], f[1], planes * pnb, arrival, f[4]))
        return status, failed, done

    def _erase_few(self, cmd, heads, arrival):
        """_erase for the blocks from _groups, in plain integers."""
        planes = self._planes[(cmd.cdw12 >> 16) & 0x3]
        n = len(heads) * planes
        if n > 1:
            self.dma.bytes_read += 8 * n                     # the PPA list, as _ppas counts it
        ch, lun, blk, pl = zip(*[(f[0], f[1], f[2], q) for f in heads for q in range(planes)])
        st = self.core.erase_blocks(ch, lun, blk, pl)
        status, failed = self._outcome(st, 1, n) if st.any() else (Status.SUCCESS, 0)
        done = arrival
        if self.timing.enabled:
            charge = self.timing.charge
            for f in heads:
                done = max(done, charge(MediaOp.ERASE, f[0], f[1], 0, arrival, f[2]))
        return status, failed, done

    def _read(self, cmd, f, xfer, meta, arrival):
        geo = self.geo
        secb, sos, nsec = geo.sector_nbytes, geo.meta_nbytes, geo.nsectors
        n = f.shape[0]
        if n == 1:
            return self._read_one(cmd, f[0].tolist(), xfer, meta, arrival)
        # consecutive addresses on the same page make one page read
        start = np.ones(n, dtype=bool)
        start[1:] = np.any(f[1:, :5] != f[:-1, :5], axis=1)
        pages = f[start]
        run = np.cumsum(start) - 1
        self.core.submit(cmd, MmgrCmd.READ_PG, int(pages[0, 0]))
        st, rows = self.core.read_pages(pages[:, 0], pages[:, 1], pages[:, 2], pages[:, 3], pages[:, 4])
        sink = xfer.sink()
        out = sink if sink is not None else np.empty(xfer.nbytes, dtype=np.uint8)
        out2 = out.reshape(n, secb)
        if n == pages.shape[0] * nsec and np.array_equal(f[:, 5], self._sec_cycle[:n]):
            # whole pages in order (line and pblk reads): gather 16 KiB rows, not 4 KiB
            # mode="clip": the rows are in range, and numpy's bounds-checked take copies rows
            # several times slower than a memcpy
            np.take(self.volt.data_rows, rows, axis=0, out=out.reshape(-1, geo.page_nbytes), mode="clip")
        else:
            np.take(self.volt.data_rows.reshape(-1, secb), rows[run] * nsec + f[:, 5], axis=0, out=out2,
                    mode="clip")
        failed_addr = st[run] != _OK if st.any() else None
        if failed_addr is not None:
            out2[failed_addr] = 0
        if meta is not None:
            host_oob = self.volt.oob_rows[:, :nsec * sos].reshape(-1, nsec, sos)
            m2 = meta.reshape(n, sos)
            m2[:] = host_oob[rows[run], f[:, 5]]
            if failed_addr is not None:
                m2[failed_addr] = 0
        if sink is None:
            xfer.write(out)
        self.bytes_read += xfer.nbytes
        status, failed = self._outcome(st[run], 1, n) if failed_addr is not None else (Status.SUCCESS, 0)
        return status, failed, self._charge(MediaOp.READ, pages, geo.page_nbytes, arrival)

    def _read_single(self, cmd, arrival):
        """The 4 KiB random read, untraced: one PPA in the command, plain integers, one copy
        from the media page into the host's buffer (in place when it is one guest page)."""
        ppa = cmd.cdw10 | (cmd.cdw11 << 32)
        if ppa & ~self._ppa_mask:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} has bits beyond the format")
        (o0, m0, l0), (o1, m1, l1), (o2, m2, l2), (o3, m3, l3), (o4, m4, l4), (o5, m5, l5) = self._fields
        ch, lun, blk, pl, pg, sec = ((ppa >> o0) & m0, (ppa >> o1) & m1, (ppa >> o2) & m2, (ppa >> o3) & m3,
                                     (ppa >> o4) & m4, (ppa >> o5) & m5)
        if ch >= l0 or lun >= l1 or blk >= l2 or pl >= l3 or pg >= l4 or sec >= l5:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} lies outside the geometry")
        planes = self._planes.get((cmd.cdw12 >> 16) & 0x3)
        if planes is None or planes > self.geo.nplanes:
            self._pmode(cmd)                                 # raises its INVALID_FIELD
        secb = self.sector_nbytes
        prp1 = cmd.prp1
        off = prp1 & 0xFFF
        dma = self.dma
        if off + secb <= 4096 and not off & 3 and prp1 + secb <= dma.size and not cmd.mptr:
            st, pdata, _ = self.core.read(ch, lun, blk, pl, pg)       # one guest page: in place
            dma.bytes_written += secb
            dma.ram[prp1:prp1 + secb] = pdata[sec * secb:(sec + 1) * secb]
            self.bytes_read += secb
            return self._read_done(st, ch, lun, pg, arrival)
        xfer = Transfer(dma, prp1, cmd.prp2, secb)
        meta = None
        if cmd.mptr:
            try:
                meta = dma.view(cmd.mptr, self.geo.meta_nbytes)
            except DmaError as e:
                raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        return self._read_one(cmd, (ch, lun, blk, pl, pg, sec), xfer, meta, arrival)

    def _read_one(self, cmd, addr, xfer, meta, arrival):
        """One sector: plain integers and one copy."""
        ch, lun, blk, pl, pg, sec = addr
        secb, sos = self.sector_nbytes, self.geo.meta_nbytes
        self.core.submit(cmd, MmgrCmd.READ_PG, ch)
        st, pdata, poob = self.core.read(ch, lun, blk, pl, pg)
        sink = xfer.sink()
        if sink is not None:
            sink[:] = pdata[sec * secb:(sec + 1) * secb]
        else:
            xfer.write(pdata[sec * secb:(sec + 1) * secb])
        if meta is not None:
            meta[:] = poob[sec * sos:(sec + 1) * sos]
        self.bytes_read += secb
        return self._read_done(st, ch, lun, pg, arrival)

    def _read_done(self, st, ch, lun, pg, arrival):
        """A one-sector read's (status, failed bitmap, completion time)."""
        done = arrival
        if self.timing.enabled:
            done = self.volt.charge(MediaOp.READ, ch, lun, self.geo.page_nbytes, arrival, pg)
        if st is MediaStatus.OK:
            return Status.SUCCESS, 0, done
        return _FAIL_STATUS[st], 1, done

    def _trace_cmd(self, cmd, f, xfer, meta_nbytes):
        secb, sos = self.geo.sector_nbytes, self.geo.meta_nbytes
        n = f.shape[0]
        prps = []
        if xfer is not None:
            base = [int(p) for p in xfer.pages]
            prps = [base[(xfer.offset + i * secb) // 4096] + (xfer.offset + i * secb) % 4096
                    for i in range(n)]
        metas = [(cmd.mptr + i * sos) if cmd.mptr else 0 for i in range(n)] if xfer is not None else []
        self.tracer.io_cmd(cmd.seq, cmd, n, n * secb if xfer is not None else 0, meta_nbytes,
                           [(ch, lun, blk, pl, pg, sec) for ch, lun, blk, pl, pg, sec in f.tolist()],
                           prps, metas)

    # ------------------------------------------------------------------ bad blocks
    def get_bbt(self, cmd):
        ch, lun = self.decode(cmd.spba)[:2]
        geo = self.geo
        states = self.volt.store.bbt[ch, lun].reshape(-1)          # blk * planes + pl
        hdr = BbTableHeader(tblid=BBT_MAGIC, verid=1, revid=0, tblks=geo.nblocks * geo.nplanes,
                            tfact=int(np.count_nonzero(states == BlockState.BAD)),
                            tgrown=int(np.count_nonzero(states == BlockState.GRWN_BAD)),
                            tdresv=int(np.count_nonzero(states == BlockState.DEV)),
                            thresv=int(np.count_nonzero(states == BlockState.HOST)))
        data = np.concatenate([np.frombuffer(bytes(hdr), np.uint8), states])
        Transfer(self.dma, cmd.prp1, cmd.prp2, data.nbytes).write(data)
        return Status.SUCCESS, 0

    def set_bbt(self, cmd):
        state = (cmd.cdw12 >> 16) & 0xFF
        if state not in _VALID_BB_STATES:
            return Status.INVALID_FIELD | Status.DNR, 0
        ppas = self._ppas(cmd)
        if self.volt.read_only:
            return _WRITE_PROTECTED, 0
        self.volt.set_block_states(ppas[:, 0], ppas[:, 1], ppas[:, 2], ppas[:, 3], state)
        return Status.SUCCESS, 0

    # ------------------------------------------------------------------ media label
    def set_target(self, cmd):
        """OX vendor 0xC1: record the host target in the media label (device.target)."""
        return set_target(self.dma, self.volt, cmd)
