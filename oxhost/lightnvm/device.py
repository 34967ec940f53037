"""The open-channel device as liblightnvm 1.2 presents it: geometry, physical I/O in
plane modes with OOB metadata, bad block tables, DMA buffers (SPEC 9)."""
import numpy as np

from oxemu.wire import (MAX_PPAS, PCI_DEVICE_ID, PCI_VENDOR_ID, AdminOpc, BbTableHeader,
                        BlockState, Cns, IdNs, MPOS_DUAL_PLANE, MPOS_QUAD_PLANE, NvmOpc, PMode,
                        Status)

from ..driver import NvmeDriver
from .addr import Addr, AddrCheck, addr_check, gen2dev, ppa_check
from .bbt import BbTable
from .errors import AddrError, LightnvmError, NotOpenChannel, NvmError
from .geo import Geo

BATCH = 16          # commands written per doorbell on multi-command calls


class Device:
    """An open-channel SSD opened through the user-space NVMe driver."""

    def __init__(self, driver: NvmeDriver, geo: Geo):
        self.driver = driver
        self.geo = geo
        self.pmode = self.pmode_max()
        self.nsid = 1
        pool = driver.pool
        nbytes = MAX_PPAS * geo.sector_nbytes
        self._batch = min(BATCH, driver.queues[1].depth - 1)
        self._stage = pool.alloc(self._batch * nbytes, zero=False)
        self._lists = pool.alloc(self._batch * MAX_PPAS * 8)
        self._metas = pool.alloc(self._batch * MAX_PPAS * geo.meta_nbytes)
        self._list_u64 = self._lists.array.view("<u8").reshape(self._batch, MAX_PPAS)
        f = geo.ppaf
        self._limits = [(bit, off, ln, lim) for bit, off, ln, lim in (
            (AddrCheck.CH, f.ch_off, f.ch_len, geo.nchannels), (AddrCheck.LUN, f.lun_off, f.lun_len, geo.nluns),
            (AddrCheck.PL, f.pl_off, f.pl_len, geo.nplanes), (AddrCheck.BLK, f.blk_off, f.blk_len, geo.nblocks),
            (AddrCheck.PG, f.pg_off, f.pg_len, geo.npages), (AddrCheck.SEC, f.sec_off, f.sec_len, geo.nsectors))
            if lim < (1 << ln)]
        top = max(f.ch_off + f.ch_len, f.lun_off + f.lun_len, f.pl_off + f.pl_len, f.blk_off + f.blk_len,
                  f.pg_off + f.pg_len, f.sec_off + f.sec_len)
        self._beyond = ~((1 << top) - 1) & 0xFFFF_FFFF_FFFF_FFFF

    @classmethod
    def open(cls, machine, **driver_kw) -> "Device":
        """Bring the controller up and read the LightNVM identity (nvm_dev_open)."""
        if (machine.config_read(0), machine.config_read(2)) != (PCI_VENDOR_ID, PCI_DEVICE_ID):
            raise NotOpenChannel("the device's PCI ids are not an open-channel SSD's")
        driver = NvmeDriver(machine, **driver_kw)
        ns = IdNs.from_buffer_copy(driver.identify(Cns.NAMESPACE, nsid=1))
        if ns.vs[0] != 1:
            driver.shutdown()
            raise NotOpenChannel("namespace 1 is not a LightNVM namespace (device in AppNVM mode?)")
        buf = driver.pool.alloc(4096)
        try:
            c = driver.admin(AdminOpc.NVM_IDENTITY, nsid=1, prp1=buf.addr)
            if c.status:
                raise NotOpenChannel(f"LightNVM identity failed with status 0x{c.status:04x}")
            geo = Geo.from_identity(bytes(buf.array))
        finally:
            buf.free()
        return cls(driver, geo)

    def close(self) -> None:
        self.driver.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pmode_max(self) -> PMode:
        if self.geo.mpos & MPOS_QUAD_PLANE and self.geo.nplanes == 4:
            return PMode.QUAD
        if self.geo.mpos & MPOS_DUAL_PLANE and self.geo.nplanes >= 2:
            return PMode.DUAL
        return PMode.SNGL

    # ---------------------------------------------------------------- buffers
    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer in guest RAM: I/O to and from it needs no bounce copy (nvm_buf_alloc)."""
        return self.driver.buf_alloc(nbytes)

    def buf_free(self, arr: np.ndarray) -> None:
        if not self.driver.buf_free(arr):
            raise LightnvmError("buf_free: not a buffer from buf_alloc")

    # ---------------------------------------------------------------- addresses
    def ppas(self, addrs) -> np.ndarray:
        """Device PPAs (uint64) of generic addresses or device PPA values, checked against
        the geometry: AddrError names the fields outside it, and nothing is sent. No value
        is ever masked into another block."""
        if isinstance(addrs, Addr):
            addrs = [addrs]
        if isinstance(addrs, np.ndarray):
            ppas = addrs.astype(np.uint64, copy=False).reshape(-1)
            if ppas.size == 1:                  # the 4 KiB request: plain integers
                bad = self._check_one(int(ppas[0]))
                if bad:
                    raise AddrError(bad, "1 device PPA")
                return ppas
        else:
            addrs = list(addrs)
            if addrs and isinstance(addrs[0], Addr):
                bad = addr_check(addrs, self.geo)
                if bad:
                    raise AddrError(bad, f"{len(addrs)} address(es)")
                return np.array([gen2dev(a, self.geo) for a in addrs], dtype=np.uint64)
            try:
                ppas = np.array([int(a) for a in addrs], dtype=np.uint64)
            except (TypeError, ValueError, OverflowError):
                raise LightnvmError("addresses must be Addr objects or device PPA values") from None
        bad = ppa_check(ppas, self.geo)
        if bad:
            raise AddrError(bad, f"{ppas.size} device PPA(s)")
        return ppas

    def _check_one(self, ppa: int) -> int:
        """ppa_check of one device PPA, in plain integers."""
        mask = AddrCheck.CH if ppa & self._beyond else 0
        for bit, off, ln, lim in self._limits:
            if (ppa >> off) & ((1 << ln) - 1) >= lim:
                mask |= bit
        return int(mask)

    def addr_erase(self, addrs, pmode=None) -> None:
        """Erase blocks; in DUAL/QUAD mode pass one address per plane of each block."""
        self.ppa_io(NvmOpc.PH_ERASE, addrs, self.pmode if pmode is None else pmode)

    def addr_write(self, addrs, data, meta=None, pmode=None) -> None:
        """Program whole pages: one sector of `data` (and sos bytes of `meta`) per address."""
        self.ppa_io(NvmOpc.PH_WRITE, addrs, self.pmode if pmode is None else pmode,
                    data=data, meta=meta)

    def addr_read(self, addrs, pmode=None, with_meta=False, out=None):
        """(data, meta) for the addresses; meta is None unless with_meta."""
        return self.ppa_io(NvmOpc.PH_READ, addrs, self.pmode if pmode is None else pmode,
                           out=out, with_meta=with_meta)

    # ---------------------------------------------------------------- the I/O path
    def ppa_io(self, opcode, addrs, pmode, data=None, meta=None, out=None, with_meta=False):
        """Split the addresses into commands of <= 64, BATCH per doorbell.

        Raises NvmError with one status per address when any fails. A command reports one
        status for all its failed addresses (the worst); when that is not an empty page and
        several addresses failed, each is read again alone to learn its own status."""
        ppas = self.ppas(addrs)
        geo = self.geo
        n = ppas.size
        if n == 0:
            raise LightnvmError("no addresses")
        secb, sos = geo.sector_nbytes, geo.meta_nbytes
        control = int(pmode)
        drv = self.driver
        reading = opcode == NvmOpc.PH_READ
        writing = opcode == NvmOpc.PH_WRITE
        data_addr = None
        if writing:
            data = np.asarray(data).reshape(-1).view(np.uint8)
            if data.nbytes < n * secb:
                raise LightnvmError(f"write of {n} sectors needs {n * secb} bytes, got {data.nbytes}")
            data_addr = self.driver.guest_addr(data)
        if meta is not None:
            meta = np.asarray(meta).reshape(-1).view(np.uint8)
            if meta.nbytes < n * sos:
                raise LightnvmError(f"metadata for {n} sectors needs {n * sos} bytes, got {meta.nbytes}")
        meta_out = None
        if reading:
            if out is None:
                out = np.empty(n * secb, dtype=np.uint8)
            else:
                out = out.reshape(-1).view(np.uint8)
                if out.nbytes < n * secb:
                    raise LightnvmError(f"read buffer of {out.nbytes} bytes is short of {n * secb}")
            data_addr = self.driver.guest_addr(out)
            meta_out = np.empty(n * sos, dtype=np.uint8) if with_meta else None
        if n == 1 and data_addr is not None and meta is None and not with_meta:
            return self._io_one(opcode, int(ppas[0]), control, data_addr, out)
        statuses = None
        ambiguous = []
        stage, stage_addr = self._stage.array, self._stage.addr
        chunk_nbytes = MAX_PPAS * secb
        for b0 in range(0, n, MAX_PPAS * self._batch):
            cmds, spans = [], []
            for slot, s in enumerate(range(b0, min(n, b0 + MAX_PPAS * self._batch), MAX_PPAS)):
                e = min(n, s + MAX_PPAS)
                k = e - s
                if k == 1:
                    spba = int(ppas[s])
                else:
                    self._list_u64[slot, :k] = ppas[s:e]
                    spba = self._lists.addr + slot * MAX_PPAS * 8
                prp1 = prp2 = mptr = 0
                if opcode != NvmOpc.PH_ERASE:
                    if data_addr is not None:
                        addr = data_addr + s * secb
                    else:
                        addr = stage_addr + slot * chunk_nbytes
                        if writing:
                            stage[slot * chunk_nbytes:slot * chunk_nbytes + k * secb] = data[s * secb:e * secb]
                    prp1, prp2 = drv.prps(1, slot, addr, k * secb)
                    if meta is not None or with_meta:
                        mptr = self._metas.addr + slot * MAX_PPAS * sos
                        if meta is not None:
                            self._metas.array[slot * MAX_PPAS * sos:slot * MAX_PPAS * sos + k * sos] = \
                                meta[s * sos:e * sos]
                cmds.append((opcode, 0, self.nsid, mptr, prp1, prp2, spba & 0xFFFFFFFF, spba >> 32,
                             (k - 1) | (control << 16), 0, 0, 0))
                spans.append((s, e))
            comps = drv.submit(1, cmds)
            for slot, ((s, e), c) in enumerate(zip(spans, comps)):
                if reading:
                    if data_addr is None:
                        out[s * secb:e * secb] = stage[slot * chunk_nbytes:slot * chunk_nbytes + (e - s) * secb]
                    if with_meta:
                        mo = slot * MAX_PPAS * sos
                        meta_out[s * sos:e * sos] = self._metas.array[mo:mo + (e - s) * sos]
                if c.status and c.status != Status.NVM_WARN_HIGH_ECC:
                    if statuses is None:
                        statuses = np.zeros(n, dtype=np.uint16)
                    k = e - s
                    if c.result:
                        bits = np.unpackbits(np.frombuffer(int(c.result).to_bytes(8, "little"), np.uint8),
                                             bitorder="little")[:k].astype(bool)
                    else:
                        bits = np.ones(k, dtype=bool)
                    statuses[s:e][bits] = c.status
                    if reading and c.status != Status.NVM_EMPTY_PAGE and np.count_nonzero(bits) > 1:
                        ambiguous.extend((s + np.flatnonzero(bits)).tolist())
        if statuses is None:
            return (out[:n * secb], meta_out) if reading else None
        for i in ambiguous:
            statuses[i] = self._read_one(int(ppas[i]), control, out[i * secb:(i + 1) * secb],
                                         None if meta_out is None else meta_out[i * sos:(i + 1) * sos])
        if not statuses.any():
            return out[:n * secb], meta_out
        what = {NvmOpc.PH_ERASE: "erase", NvmOpc.PH_WRITE: "write", NvmOpc.PH_READ: "read"}[opcode]
        raise NvmError(statuses, f"{what} of {n} address(es)",
                       data=out if reading else None, meta=meta_out)

    def _io_one(self, opcode, ppa: int, control: int, data_addr: int, out):
        """One address, its data in guest RAM: the 4 KiB request, one command, no lists."""
        drv = self.driver
        prp1, prp2 = drv.prps(1, 0, data_addr, self.geo.sector_nbytes)
        c = drv.submit(1, [(opcode, 0, self.nsid, 0, prp1, prp2, ppa & 0xFFFFFFFF, ppa >> 32,
                            control << 16, 0, 0, 0)])[0]
        if c.status and c.status != Status.NVM_WARN_HIGH_ECC:
            what = {NvmOpc.PH_WRITE: "write", NvmOpc.PH_READ: "read"}[opcode]
            raise NvmError(np.array([c.status], dtype=np.uint16), f"{what} of 1 address(es)",
                           data=out if opcode == NvmOpc.PH_READ else None)
        return (out[:self.geo.sector_nbytes], None) if opcode == NvmOpc.PH_READ else None

    def _read_one(self, ppa: int, control: int, out: np.ndarray, meta_out) -> int:
        """One address read alone into out (and meta_out): its own status."""
        secb, sos = self.geo.sector_nbytes, self.geo.meta_nbytes
        stage = self._stage
        mptr = self._metas.addr if meta_out is not None else 0
        prp1, prp2 = self.driver.prps(1, 0, stage.addr, secb)
        c = self.driver.submit(1, [(NvmOpc.PH_READ, 0, self.nsid, mptr, prp1, prp2, ppa & 0xFFFFFFFF,
                                    ppa >> 32, control << 16, 0, 0, 0)])[0]
        out[:] = stage.array[:secb]
        if meta_out is not None:
            meta_out[:] = self._metas.array[:sos]
        return 0 if c.status == Status.NVM_WARN_HIGH_ECC else c.status

    # ---------------------------------------------------------------- bad blocks
    def bbt_get(self, addr: Addr) -> BbTable:
        geo = self.geo
        nblks = geo.nblocks * geo.nplanes
        buf = self.driver.pool.alloc(64 + nblks)
        try:
            ppa = int(self.ppas(Addr(addr.ch, addr.lun))[0])
            c = self.driver.admin(AdminOpc.NVM_GET_BBT, nsid=1, prp1=buf.addr,
                                  cdw10=ppa & 0xFFFFFFFF, cdw11=ppa >> 32)
            if c.status:
                raise NvmError(np.array([c.status], np.uint16), f"get bad block table of ch {addr.ch} lun {addr.lun}")
            h = BbTableHeader.from_buffer_copy(bytes(buf.array[:64]))
            if h.tblid != b"BBLT" or h.tblks != nblks:
                raise LightnvmError("bad block table from the device is malformed")
            return BbTable(Addr(addr.ch, addr.lun), buf.array[64:64 + nblks].copy(), geo.nplanes,
                           h.tfact, h.tgrown, h.tdresv, h.thresv)
        finally:
            buf.free()

    def bbt_mark(self, addrs, state: int) -> None:
        """Set the state of the block-planes the addresses name (nvm_bbt_mark)."""
        ppas = self.ppas(addrs)
        state = BlockState(state)
        for s in range(0, len(ppas), MAX_PPAS):
            chunk = ppas[s:s + MAX_PPAS]
            k = len(chunk)
            if k == 1:
                spba = chunk[0]
            else:
                self._list_u64[0, :k] = chunk
                spba = self._lists.addr
            spba = int(spba)
            c = self.driver.admin(AdminOpc.NVM_SET_BBT, nsid=1, cdw10=spba & 0xFFFFFFFF,
                                  cdw11=spba >> 32, cdw12=(k - 1) | (int(state) << 16))
            if c.status:
                raise NvmError(np.full(k, c.status, np.uint16), "set bad block table")

    def bbt_set(self, table: BbTable) -> None:
        """Write a whole LUN's table: one set command per state present (nvm_bbt_set)."""
        geo = self.geo
        if table.blks.size != geo.nblocks * geo.nplanes:
            raise LightnvmError(f"table has {table.blks.size} entries, the LUN {geo.nblocks * geo.nplanes}")
        for state in np.unique(table.blks):
            idx = np.flatnonzero(table.blks == state)
            addrs = [Addr(table.addr.ch, table.addr.lun, pl=int(i) % geo.nplanes, blk=int(i) // geo.nplanes)
                     for i in idx]
            self.bbt_mark(addrs, int(state))
