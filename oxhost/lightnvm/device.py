"""The open-channel device as liblightnvm 1.2 presents it: geometry, physical I/O in
plane modes with OOB metadata, bad block tables, DMA buffers (SPEC 9)."""
import numpy as np

from oxemu.wire import (MAX_PPAS, PCI_DEVICE_ID, PCI_VENDOR_ID, SQE_DTYPE, AdminOpc,
                        BbTableHeader, BlockState, Cns, IdNs, MPOS_DUAL_PLANE, MPOS_QUAD_PLANE,
                        NvmOpc, PMode, Status)

from ..driver import NvmeDriver
from .addr import Addr, AddrCheck, addr_check, gen2dev, ppa_check
from .bbt import BbTable
from .errors import AddrError, LightnvmError, NotOpenChannel, NvmError
from .geo import Geo

BATCH = 16          # commands per doorbell when data bounces through the staging buffer
BATCH_IN_PLACE = 64     # ... and when the caller's buffer is in guest RAM (a vblk line: 4 doorbells)
_HIGH_ECC = int(Status.NVM_WARN_HIGH_ECC)
_PH_READ = int(NvmOpc.PH_READ)


class Device:
    """An open-channel SSD opened through the user-space NVMe driver."""

    def __init__(self, driver: NvmeDriver, geo: Geo):
        self.driver = driver
        self.geo = geo
        self.pmode = self.pmode_max()
        self.nsid = 1
        pool = driver.pool
        nbytes = MAX_PPAS * geo.sector_nbytes
        depth = driver.queues[1].depth
        self._batch = min(BATCH, depth - 1)
        self._batch_in_place = max(self._batch, min(BATCH_IN_PLACE, depth - 1))
        self._stage = pool.alloc(self._batch * nbytes, zero=False)
        self._lists = pool.alloc(self._batch_in_place * MAX_PPAS * 8)
        self._metas = pool.alloc(self._batch_in_place * MAX_PPAS * geo.meta_nbytes)
        self._list_u64 = self._lists.array.view("<u8").reshape(self._batch_in_place, MAX_PPAS)
        self._cmd_index = np.arange(self._batch_in_place, dtype=np.int64)
        self._sq_templates: dict = {}
        f = geo.ppaf
        self._limits = [(bit, off, ln, lim) for bit, off, ln, lim in (
            (AddrCheck.CH, f.ch_off, f.ch_len, geo.nchannels), (AddrCheck.LUN, f.lun_off, f.lun_len, geo.nluns),
            (AddrCheck.PL, f.pl_off, f.pl_len, geo.nplanes), (AddrCheck.BLK, f.blk_off, f.blk_len, geo.nblocks),
            (AddrCheck.PG, f.pg_off, f.pg_len, geo.npages), (AddrCheck.SEC, f.sec_off, f.sec_len, geo.nsectors))
            if lim < (1 << ln)]
        top = max(f.ch_off + f.ch_len, f.lun_off + f.lun_len, f.pl_off + f.pl_len, f.blk_off + f.blk_len,
                  f.pg_off + f.pg_len, f.sec_off + f.sec_len)
        self._beyond = ~((1 << top) - 1) & 0xFFFF_FFFF_FFFF_FFFF
        self._beyond_u64 = np.uint64(self._beyond)
        self._lim_offs = np.array([off for _, off, _, _ in self._limits], dtype=np.uint64)
        self._lim_masks = np.array([(1 << ln) - 1 for _, _, ln, _ in self._limits], dtype=np.uint64)
        self._lim_vals = np.array([lim for _, _, _, lim in self._limits], dtype=np.uint64)

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
            c = driver.admin(AdminOpc.NVM_IDENTITY, nsid=1, prp1=buf.addr, nbytes=4096)
            if c.status:
                raise NotOpenChannel(f"LightNVM identity failed with status 0x{c.status:04x}")
            raw = bytes(buf.array)
            if raw[0] != 1:               # ver_id: 2.0's geometry shares the byte (Linux switches on it)
                driver.shutdown()
                raise NotOpenChannel(f"the device speaks Open-Channel SSD {raw[0]}.0, not 1.2 "
                                     f"(oxhost.lightnvm2 opens it)")
            geo = Geo.from_identity(raw)
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
        elif isinstance(addrs, (int, np.integer)):
            addrs = np.array([addrs], dtype=np.uint64)
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
        if self._fast_ok(ppas):
            return ppas
        bad = ppa_check(ppas, self.geo)
        if bad:
            raise AddrError(bad, f"{ppas.size} device PPA(s)")
        return ppas

    def _fast_ok(self, ppas: np.ndarray) -> bool:
        """Every PPA inside the format and the geometry, in four array operations (the
        field-by-field ppa_check then only runs to say what is wrong)."""
        if not self._lim_offs.size:
            return not np.count_nonzero(ppas & self._beyond_u64)
        f = (ppas[:, None] >> self._lim_offs) & self._lim_masks
        return not np.count_nonzero(f >= self._lim_vals) and not np.count_nonzero(ppas & self._beyond_u64)

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
        if out is not None and opcode == _PH_READ and meta is None and not with_meta:
            ppa = self._single(addrs)              # the 4 KiB read into guest RAM: plain integers
            if ppa is not None and type(out) is np.ndarray and out.dtype == np.uint8 and out.ndim == 1 \
                    and out.nbytes >= self.geo.sector_nbytes:
                at = self.driver.guest_addr(out)
                if at is not None:
                    return self._read_in_place(ppa, int(pmode), at, out)
                secb = self.geo.sector_nbytes          # through the staging buffer
                stage = self._stage.array[:secb]
                try:
                    self._read_in_place(ppa, int(pmode), self._stage.addr, stage)
                except NvmError as e:
                    out[:secb] = stage
                    e.data = out
                    raise
                out[:secb] = stage
                return out[:secb], None
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
        staged = opcode != NvmOpc.PH_ERASE and data_addr is None
        per_bell = MAX_PPAS * (self._batch if staged else self._batch_in_place)
        has_meta = meta is not None or with_meta
        per_sec = (secb if opcode != NvmOpc.PH_ERASE else 0) + (sos if has_meta else 0)   # bus bytes
        tmpl = self._sq_template(opcode, control, has_meta)
        lu = self._list_u64
        for b0 in range(0, n, per_bell):
            b1 = min(n, b0 + per_bell)
            cnt = b1 - b0
            m = -(-cnt // MAX_PPAS)
            last = cnt - (m - 1) * MAX_PPAS                  # addresses of the last command
            sq = tmpl[:m].copy()
            if last == MAX_PPAS:
                lu[:m] = ppas[b0:b1].reshape(m, MAX_PPAS)
            else:
                if m > 1:
                    lu[:m - 1] = ppas[b0:b1 - last].reshape(m - 1, MAX_PPAS)
                lu[m - 1, :last] = ppas[b1 - last:b1]
                sq["cdw12"][m - 1] = (last - 1) | (control << 16)
                if last == 1:                                # one address: the PPA itself
                    p = int(ppas[b1 - 1])
                    sq["cdw10"][m - 1], sq["cdw11"][m - 1] = p & 0xFFFFFFFF, p >> 32
            if opcode != NvmOpc.PH_ERASE:
                if staged:
                    a0 = stage_addr
                    if writing:
                        stage[:cnt * secb] = data[b0 * secb:b1 * secb]
                else:
                    a0 = data_addr + b0 * secb
                sq["prp1"], sq["prp2"] = drv.prps_run(1, a0, chunk_nbytes, m, last * secb)
                if meta is not None:
                    self._metas.array[:cnt * sos] = meta[b0 * sos:b1 * sos]
            cst, cres = drv.submit_array(1, sq, cnt * per_sec)
            if reading and staged:
                out[b0 * secb:b1 * secb] = stage[:cnt * secb]
            if with_meta:
                meta_out[b0 * sos:b1 * sos] = self._metas.array[:cnt * sos]
            if not np.count_nonzero(cst):
                continue
            bad = np.flatnonzero((cst != 0) & (cst != _HIGH_ECC))
            s0 = b0 + self._cmd_index[:m] * MAX_PPAS
            k = np.full(m, MAX_PPAS, dtype=np.int64)
            k[-1] = last
            for slot in bad.tolist():
                st_c, res_c = int(cst[slot]), int(cres[slot])
                s, kk = int(s0[slot]), int(k[slot])
                if statuses is None:
                    statuses = np.zeros(n, dtype=np.uint16)
                if res_c:
                    bits = np.unpackbits(np.frombuffer(res_c.to_bytes(8, "little"), np.uint8),
                                         bitorder="little")[:kk].astype(bool)
                else:
                    bits = np.ones(kk, dtype=bool)
                statuses[s:s + kk][bits] = st_c
                if reading and st_c != Status.NVM_EMPTY_PAGE and np.count_nonzero(bits) > 1:
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

    def _sq_template(self, opcode: int, control: int, has_meta: bool) -> np.ndarray:
        """SQE records of a doorbell's full commands (64 addresses each, command i's PPA list
        and OOB in slot i of the list and metadata buffers): what ppa_io copies and
        completes with PRPs."""
        key = (int(opcode), int(control), bool(has_meta))
        t = self._sq_templates.get(key)
        if t is None:
            i = self._cmd_index
            t = np.zeros(i.size, dtype=SQE_DTYPE)
            t["opcode"] = opcode
            t["nsid"] = self.nsid
            spba = self._lists.addr + i * (MAX_PPAS * 8)
            t["cdw10"] = spba & 0xFFFFFFFF
            t["cdw11"] = spba >> 32
            t["cdw12"] = (MAX_PPAS - 1) | (int(control) << 16)
            if has_meta:
                t["mptr"] = self._metas.addr + i * (MAX_PPAS * self.geo.meta_nbytes)
            self._sq_templates[key] = t
        return t

    def _single(self, addrs) -> int | None:
        """The device PPA when `addrs` is one address inside the geometry, else None (the
        general path then decides, errors included)."""
        t = type(addrs)
        if t is list or t is tuple:
            if len(addrs) != 1 or type(addrs[0]) is not Addr:
                return None
            a = addrs[0]
            g = self.geo
            if not (0 <= a.ch < g.nchannels and 0 <= a.lun < g.nluns and 0 <= a.pl < g.nplanes
                    and 0 <= a.blk < g.nblocks and 0 <= a.pg < g.npages and 0 <= a.sec < g.nsectors):
                return None
            return gen2dev(a, g)
        if t is int:
            return addrs if 0 <= addrs and not self._check_one(addrs) else None
        if t is np.ndarray and addrs.size == 1:
            ppa = int(addrs.reshape(-1)[0])
            return ppa if 0 <= ppa and not self._check_one(ppa) else None
        return None

    def _read_in_place(self, ppa: int, control: int, at: int, out: np.ndarray):
        """One sector read straight into guest RAM at `at`: one command, no lists."""
        secb = self.geo.sector_nbytes
        off = at % 4096
        prp2 = 0 if off + secb <= 4096 else at - off + 4096
        st, _ = self.driver.submit_one(1, _PH_READ, self.nsid, 0, at, prp2, ppa & 0xFFFFFFFF, ppa >> 32,
                                       control << 16, secb)
        if st and st != _HIGH_ECC:
            raise NvmError(np.array([st], dtype=np.uint16), "read of 1 address(es)", data=out)
        return out[:secb], None

    def _io_one(self, opcode, ppa: int, control: int, data_addr: int, out):
        """One address, its data in guest RAM: the 4 KiB request, one command, no lists."""
        drv = self.driver
        prp1, prp2 = drv.prps(1, 0, data_addr, self.geo.sector_nbytes)
        c = drv.submit(1, [(opcode, 0, self.nsid, 0, prp1, prp2, ppa & 0xFFFFFFFF, ppa >> 32,
                            control << 16, 0, 0, 0)], nbytes=self.geo.sector_nbytes)[0]
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
                                    ppa >> 32, control << 16, 0, 0, 0)],
                               nbytes=secb + (sos if meta_out is not None else 0))[0]
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
                                  cdw10=ppa & 0xFFFFFFFF, cdw11=ppa >> 32, nbytes=64 + nblks)
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
