"""LNVM FTL (lnvm > 0): open-channel 1.2 physical commands passed straight to VOLT with
the NAND rules enforced (SPEC 5, 6). The host owns placement; the device checks and moves.
"""
import numpy as np

from ..machine.dma import DmaError
from ..volt import MediaOp, MediaStatus
from ..wire import MAX_PPAS, AdminOpc, BbTableHeader, BlockState, NvmOpc, PMode, Status, BBT_MAGIC
from .core import MmgrCmd
from .errors import CommandError
from .identity import identify_namespace, nvm_identity
from .prp import Transfer

_FAIL_STATUS = {
    MediaStatus.EMPTY: Status.NVM_EMPTY_PAGE,
    MediaStatus.PROGRAM_FAIL: Status.NVM_FAIL_WRITE,
    MediaStatus.ERASE_FAIL: Status.NVM_FAIL_WRITE,
    MediaStatus.ECC: Status.NVM_FAIL_ECC,
}
_VALID_BB_STATES = {int(s) for s in BlockState}


class LnvmFtl:
    """Open-channel mode ops: physical I/O, identity and bad block table commands."""

    lnvm = True

    def __init__(self, core, dma):
        self.core = core
        self.volt = core.volt
        self.geo = self.volt.geo
        self.timing = self.volt.timing
        self.dma = dma
        self.tracer = core.tracer
        geo = self.geo
        f = geo.ppaf
        self._fields = [(f[k][0], (1 << f[k][1]) - 1) for k in ("ch", "lun", "blk", "pl", "pg", "sec")]
        self._limits = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes, geo.npages, geo.nsectors)
        self._ppa_mask = (1 << geo.ppa_bits) - 1
        self.sector_nbytes = geo.sector_nbytes
        self.bytes_read = 0
        self.bytes_written = 0

    # ------------------------------------------------------------------ identity
    def identify_namespace(self) -> bytes:
        return identify_namespace(self.geo.total_sectors, lnvm=True)

    def admin_extra(self, opcode):
        return {AdminOpc.NVM_IDENTITY: self.nvm_identity,
                AdminOpc.NVM_GET_BBT: self.get_bbt,
                AdminOpc.NVM_SET_BBT: self.set_bbt}.get(opcode)

    def nvm_identity(self, cmd):
        data = nvm_identity(self.geo, self.timing.nand)
        Transfer(self.dma, cmd.prp1, cmd.prp2, len(data)).write(np.frombuffer(data, np.uint8))
        return Status.SUCCESS, 0

    # ------------------------------------------------------------------ addresses
    def decode(self, ppa: int):
        """(ch, lun, blk, pl, pg, sec) of a device PPA; INVALID_FIELD when out of geometry."""
        if ppa & ~self._ppa_mask:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} has bits beyond the format")
        out = tuple((ppa >> off) & mask for off, mask in self._fields)
        for v, lim in zip(out, self._limits):
            if v >= lim:
                raise CommandError(Status.INVALID_FIELD | Status.DNR, f"PPA 0x{ppa:x} outside the geometry")
        return out

    def _ppas(self, cmd) -> list:
        n = cmd.nlb + 1
        if n > MAX_PPAS:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"{n} addresses (at most {MAX_PPAS})")
        if n == 1:
            return [self.decode(cmd.spba)]
        try:
            raw = self.dma.read_u64s(cmd.spba, n)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None
        return self.decode_many(raw)

    def decode_many(self, raw: np.ndarray) -> list:
        """decode() over a PPA list at numpy speed; the same checks, the same tuples."""
        raw = raw.astype(np.uint64)
        if np.any(raw & np.uint64(~self._ppa_mask & 0xFFFFFFFFFFFFFFFF)):
            raise CommandError(Status.INVALID_FIELD | Status.DNR, "a PPA has bits beyond the format")
        cols = []
        for (off, mask), lim in zip(self._fields, self._limits):
            col = (raw >> np.uint64(off)) & np.uint64(mask)
            if np.any(col >= lim):
                raise CommandError(Status.INVALID_FIELD | Status.DNR, "a PPA lies outside the geometry")
            cols.append(col.tolist())
        return list(zip(*cols))

    def _pmode(self, cmd) -> int:
        pmode = cmd.control & 0x3
        planes = {PMode.SNGL: 1, PMode.DUAL: 2, PMode.QUAD: 4}.get(pmode)
        if planes is None or planes > self.geo.nplanes:
            raise CommandError(Status.INVALID_FIELD | Status.DNR,
                               f"plane mode {pmode} not supported by a {self.geo.nplanes}-plane device")
        return planes

    # ------------------------------------------------------------------ I/O
    def io(self, cmd, arrival_ns):
        if cmd.opcode not in (NvmOpc.PH_ERASE, NvmOpc.PH_WRITE, NvmOpc.PH_READ):
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1:
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        ppas = self._ppas(cmd)
        planes = self._pmode(cmd)
        if cmd.opcode == NvmOpc.PH_ERASE:
            if self.tracer is not None:
                self._trace_cmd(cmd, ppas, None, 0)
            return self._erase(cmd, ppas, planes, arrival_ns)
        n = len(ppas)
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
            self._trace_cmd(cmd, ppas, xfer, n * sos if meta is not None else 0)
        if cmd.opcode == NvmOpc.PH_WRITE:
            return self._write(cmd, ppas, planes, xfer, meta, arrival_ns)
        return self._read(cmd, ppas, xfer, meta, arrival_ns)

    @staticmethod
    def _groups(ppas, key_len):
        """Runs of consecutive addresses sharing their first key_len fields."""
        start = 0
        n = len(ppas)
        for i in range(1, n + 1):
            if i == n or ppas[i][:key_len] != ppas[start][:key_len]:
                yield start, i
                start = i

    def _check_planes(self, ppas, runs, planes, what):
        """Multi-plane commands cover the same unit on `planes` planes, plane by plane."""
        if planes == 1:
            return
        units = {}
        for s, e in runs:
            unit = ppas[s][:3] + ppas[s][4:5]          # ch, lun, blk, (pg)
            units.setdefault(unit, []).append(ppas[s][3])
        for unit, pls in units.items():
            if sorted(pls) != list(range(planes)):
                raise CommandError(Status.INVALID_FIELD | Status.DNR,
                                   f"{what} in {planes}-plane mode does not cover planes 0-{planes - 1} of {unit}")

    def _erase(self, cmd, ppas, planes, arrival):
        core = self.core
        runs = list(self._groups(ppas, 4))               # ch, lun, blk, pl
        self._check_planes([p[:4] + (0,) for p in ppas], runs, planes, "erase")
        core.submit(cmd, MmgrCmd.ERASE_BLK, ppas[0][0])
        status, failed, done, last = Status.SUCCESS, 0, arrival, None
        for s, e in runs:
            ch, lun, blk, pl = ppas[s][:4]
            st = core.erase(ch, lun, blk, pl)
            if (ch, lun, blk) != last:
                done = max(done, self.volt.charge(MediaOp.ERASE, ch, lun, 0, arrival))
                last = (ch, lun, blk)
            if st is not MediaStatus.OK:
                status = status or _FAIL_STATUS[st]
                failed |= ((1 << (e - s)) - 1) << s
        return status, failed, done

    def _write(self, cmd, ppas, planes, xfer, meta, arrival):
        geo = self.geo
        nsec = geo.nsectors
        runs = list(self._groups(ppas, 5))               # ch, lun, blk, pl, pg
        for s, e in runs:
            if e - s != nsec or [p[5] for p in ppas[s:e]] != list(range(nsec)):
                raise CommandError(Status.INVALID_FIELD | Status.DNR,
                                   f"write of page {ppas[s][:5]} does not cover sectors 0-{nsec - 1} in order")
        self._check_planes(ppas, runs, planes, "write")
        data = xfer.read()
        secb, sos = geo.sector_nbytes, geo.meta_nbytes
        core = self.core
        core.submit(cmd, MmgrCmd.WRITE_PG, ppas[0][0])
        status, failed, done, last = Status.SUCCESS, 0, arrival, None
        pending = 0
        for s, e in runs:
            ch, lun, blk, pl, pg = ppas[s][:5]
            oob = meta[s * sos:e * sos] if meta is not None else None
            st = core.program(ch, lun, blk, pl, pg, data[s * secb:e * secb], oob)
            unit = (ch, lun, blk, pg)
            if unit != last and last is not None:
                done = max(done, self.volt.charge(MediaOp.PROGRAM, *last[:2], pending, arrival))
                pending = 0
            last = unit
            pending += (e - s) * secb
            if st is not MediaStatus.OK:
                status = status or _FAIL_STATUS[st]
                failed |= ((1 << (e - s)) - 1) << s
        done = max(done, self.volt.charge(MediaOp.PROGRAM, *last[:2], pending, arrival))
        self.bytes_written += data.nbytes
        return status, failed, done

    def _read(self, cmd, ppas, xfer, meta, arrival):
        geo = self.geo
        secb, sos = geo.sector_nbytes, geo.meta_nbytes
        runs = list(self._groups(ppas, 5))
        sink = xfer.sink()
        out = sink if sink is not None else np.empty(xfer.nbytes, dtype=np.uint8)
        core = self.core
        core.submit(cmd, MmgrCmd.READ_PG, ppas[0][0])
        status, failed, done, last = Status.SUCCESS, 0, arrival, None
        pending = 0
        for s, e in runs:
            ch, lun, blk, pl, pg = ppas[s][:5]
            st, pdata, poob = core.read(ch, lun, blk, pl, pg)
            secs = [p[5] for p in ppas[s:e]]
            first = secs[0]
            if secs == list(range(first, first + e - s)):          # one contiguous slice
                out[s * secb:e * secb] = pdata[first * secb:(first + e - s) * secb]
                if meta is not None:
                    meta[s * sos:e * sos] = poob[first * sos:(first + e - s) * sos]
            else:
                for j, sec in enumerate(secs, s):
                    out[j * secb:(j + 1) * secb] = pdata[sec * secb:(sec + 1) * secb]
                    if meta is not None:
                        meta[j * sos:(j + 1) * sos] = poob[sec * sos:(sec + 1) * sos]
            unit = (ch, lun, blk, pg)
            if unit != last and last is not None:
                done = max(done, self.volt.charge(MediaOp.READ, *last[:2], pending, arrival))
                pending = 0
            last = unit
            pending += geo.page_nbytes
            if st is not MediaStatus.OK:
                status = status or _FAIL_STATUS[st]
                failed |= ((1 << (e - s)) - 1) << s
        done = max(done, self.volt.charge(MediaOp.READ, *last[:2], pending, arrival))
        if sink is None:
            xfer.write(out)
        self.bytes_read += xfer.nbytes
        return status, failed, done

    def _trace_cmd(self, cmd, ppas, xfer, meta_nbytes):
        secb, sos = self.geo.sector_nbytes, self.geo.meta_nbytes
        n = len(ppas)
        prps = []
        if xfer is not None:
            base = [int(p) for p in xfer.pages]
            prps = [base[(xfer.offset + i * secb) // 4096] + (xfer.offset + i * secb) % 4096
                    for i in range(n)]
        metas = [(cmd.mptr + i * sos) if cmd.mptr else 0 for i in range(n)] if xfer is not None else []
        self.tracer.io_cmd(cmd.seq, cmd, n, n * secb if xfer is not None else 0, meta_nbytes,
                           [(p[0], p[1], p[2], p[3], p[4], p[5]) for p in ppas], prps, metas)

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
        bbt = self.volt.store.bbt
        for ch, lun, blk, pl, _pg, _sec in ppas:
            bbt[ch, lun, blk, pl] = state
        return Status.SUCCESS, 0
