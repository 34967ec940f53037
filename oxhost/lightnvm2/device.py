"""An Open-Channel SSD 2.0 device as liblightnvm 2.x presents it (nvm_dev_open on a 2.0
device): the geometry, the chunk report (nvm_cmd_rprt), vector reset / write / read /
copy of chunk addresses (nvm_cmd_erase/write/read/copy) with 16 bytes of OOB per
sector, and the chunk notifications the device raises."""
import ctypes

import numpy as np

from oxemu.wire import (CHUNK_DESC_DTYPE, MAX_LBAS, PCI_DEVICE_ID, PCI_VENDOR_ID, SQE_DTYPE, AdminOpc,
                        ChunkNotification, ChunkOpc, Cns, IdNs, Ocssd2LogPage, Status, describe_status)

from ..driver import NvmeDriver
from ..lightnvm.errors import AddrError, LightnvmError, NotOpenChannel, NvmError
from .addr import AddrCheck, ChunkAddr, addr_check, dev_lbas, gen2dev, gen2lpo, lba_check
from .geo import Geo20

BATCH = 16                     # commands per doorbell
LOG_CHUNK_NBYTES = 64 << 10    # a chunk report is read in log page pieces of this size
_HIGH_ECC = int(Status.OCSSD_HIGH_ECC)
_UNWRITTEN = int(Status.UNWRITTEN_BLOCK | Status.DNR)
_READ = int(ChunkOpc.VECTOR_READ)


class NotOcssd2(NotOpenChannel):
    """The device on the bus does not speak Open-Channel SSD 2.0 (a 1.2 device, or AppNVM)."""


class Device20:
    """A 2.0 open-channel SSD opened through the user-space NVMe driver. Addresses are
    ChunkAddr objects or device LBAs (ints, uint64 arrays); every call checks them
    against the geometry first (AddrError, nothing sent). A call whose LBAs fail raises
    NvmError with one status per LBA (HIGH_ECC reads count as read: `counters`)."""

    def __init__(self, driver: NvmeDriver, geo: Geo20):
        self.driver = driver
        self.geo = geo
        self.nsid = 1
        pool = driver.pool
        depth = driver.queues[1].depth
        self._batch = min(BATCH, depth - 1)
        secb, sos = geo.nbytes, geo.nbytes_oob
        self._stage = pool.alloc(self._batch * MAX_LBAS * secb, zero=False)
        self._lists = pool.alloc(2 * self._batch * MAX_LBAS * 8)
        self._metas = pool.alloc(self._batch * MAX_LBAS * sos)
        self._list_u64 = self._lists.array.view("<u8").reshape(2, self._batch, MAX_LBAS)
        self._log = pool.alloc(LOG_CHUNK_NBYTES)
        self.counters = dict(high_ecc_lbas=0, rereads=0)
        f = geo.lbaf
        self._nbits = f.nbits
        fields = ((AddrCheck.PUGRP, f.pugrp_off, f.pugrp_len, geo.npugrp),
                  (AddrCheck.PUNIT, f.punit_off, f.punit_len, geo.npunit),
                  (AddrCheck.CHUNK, f.chunk_off, f.chunk_len, geo.nchunk),
                  (AddrCheck.SECTR, f.sectr_off, f.sectr_len, geo.nsectr))
        self._limits = [x for x in fields if x[3] < (1 << x[2])]

    @classmethod
    def open(cls, machine, **driver_kw) -> "Device20":
        """Bring the controller up and read the 2.0 geometry; NotOcssd2 when the device
        speaks another interface (nothing is written)."""
        if (machine.config_read(0), machine.config_read(2)) != (PCI_VENDOR_ID, PCI_DEVICE_ID):
            raise NotOcssd2("the device's PCI ids are not an open-channel SSD's")
        driver = NvmeDriver(machine, **driver_kw)
        try:
            ns = IdNs.from_buffer_copy(driver.identify(Cns.NAMESPACE, nsid=1))
            if ns.vs[0] != 1:
                raise NotOcssd2("namespace 1 is not an open-channel namespace (device in AppNVM mode?)")
            buf = driver.pool.alloc(4096)
            try:
                c = driver.admin(AdminOpc.NVM_IDENTITY, nsid=1, prp1=buf.addr, nbytes=4096)
                if c.status:
                    raise NotOcssd2(f"the geometry command failed: {describe_status(c.status)}")
                raw = bytes(buf.array)
            finally:
                buf.free()
            if raw[0] != 2:
                raise NotOcssd2(f"the device speaks Open-Channel SSD {raw[0]}.x, not 2.0 (its geometry "
                                f"major version is {raw[0]})")
            lbaf = ns.lbaf[ns.flbas & 0xF]
            geo = Geo20.from_geometry(raw, 1 << lbaf.ds, lbaf.ms)
        except BaseException:
            driver.shutdown()
            raise
        return cls(driver, geo)

    def close(self) -> None:
        self.driver.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ buffers
    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer in guest RAM: I/O to and from it needs no bounce copy."""
        return self.driver.buf_alloc(nbytes)

    def buf_free(self, arr: np.ndarray) -> None:
        if not self.driver.buf_free(arr):
            raise LightnvmError("buf_free: not a buffer from buf_alloc")

    # ------------------------------------------------------------ addresses
    def lbas(self, addrs) -> np.ndarray:
        """Device LBAs (uint64) of ChunkAddr objects or LBA values, checked against the
        geometry (AddrError names the fields outside it; nothing is sent)."""
        if isinstance(addrs, ChunkAddr):
            addrs = [addrs]
        elif isinstance(addrs, (int, np.integer)):
            addrs = np.array([addrs], dtype=np.uint64)
        if not isinstance(addrs, np.ndarray):
            addrs = list(addrs)
            if addrs and isinstance(addrs[0], ChunkAddr):
                bad = addr_check(addrs, self.geo)
                if bad:
                    raise AddrError(bad, f"{len(addrs)} address(es)")
                return np.array([gen2dev(a, self.geo) for a in addrs], dtype=np.uint64)
            try:
                addrs = np.array([int(a) for a in addrs], dtype=np.uint64)
            except (TypeError, ValueError, OverflowError):
                raise LightnvmError("addresses must be ChunkAddr objects or device LBA values") from None
        lbas = addrs.astype(np.uint64, copy=False).reshape(-1)
        if lbas.size == 1:                              # the 4 KiB request: plain integers
            bad = self._check_one(int(lbas[0]))
            if bad:
                raise AddrError(bad, "1 LBA")
            return lbas
        bad = lba_check(lbas, self.geo)
        if bad:
            raise AddrError(bad, f"{lbas.size} LBA(s)")
        return lbas

    def _check_one(self, lba: int) -> int:
        mask = AddrCheck.PUGRP if lba >> self._nbits else 0
        for bit, off, ln, lim in self._limits:
            if (lba >> off) & ((1 << ln) - 1) >= lim:
                mask |= bit
        return int(mask)

    def chunk_lbas(self, pugrp, punit, chunk, sectr=0) -> np.ndarray:
        """LBAs of field arrays (broadcast), unchecked: for callers that built them in range."""
        return dev_lbas(self.geo, pugrp, punit, chunk, sectr)

    # ------------------------------------------------------------ chunk report
    def rprt(self, addr: ChunkAddr | None = None, nchunks: int | None = None) -> np.ndarray:
        """Chunk descriptors (wire.CHUNK_DESC_DTYPE: cs, ct, wli, slba, cnlb, wp) from the
        chunk information log page (nvm_cmd_rprt): every chunk, group-major (addr None),
        or nchunks from the chunk `addr` names (default: the rest of its PU)."""
        g = self.geo
        if addr is None:
            first, count = 0, g.nchunks
        else:
            bad = addr_check(addr.replace(sectr=0), g)
            if bad:
                raise AddrError(bad, "chunk report address")
            first = gen2lpo(addr, g) // CHUNK_DESC_DTYPE.itemsize
            count = g.nchunk - addr.chunk if nchunks is None else nchunks
            if count < 1 or first + count > g.nchunks:
                raise LightnvmError(f"chunk report of {count} chunk(s) from {addr} runs past the device")
        out = np.empty(count, dtype=CHUNK_DESC_DTYPE)
        raw = out.view(np.uint8)
        per = LOG_CHUNK_NBYTES
        off = first * CHUNK_DESC_DTYPE.itemsize
        for s in range(0, raw.size, per):
            n = min(per, raw.size - s)
            raw[s:s + n] = self._get_log(Ocssd2LogPage.CHUNK_INFO, n, off + s)
        return out

    def _get_log(self, lid: int, nbytes: int, offset: int = 0) -> np.ndarray:
        drv, buf = self.driver, self._log
        numd = nbytes // 4 - 1
        prp1, prp2 = drv.prps(0, 0, buf.addr, nbytes)
        c = drv.admin(AdminOpc.GET_LOG_PAGE, nsid=self.nsid, prp1=prp1, prp2=prp2,
                      cdw10=lid | (numd & 0xFFFF) << 16, cdw11=numd >> 16, cdw12=offset & 0xFFFFFFFF,
                      cdw13=offset >> 32, nbytes=nbytes)
        if c.status:
            raise NvmError(np.array([c.status], np.uint16), f"get log page 0x{lid:02x}")
        return buf.array[:nbytes].copy()

    # ------------------------------------------------------------ notifications
    def request_events(self, n: int = 1) -> None:
        """Submit n asynchronous event requests: the device completes one when it has a
        chunk notification to report."""
        for _ in range(n):
            self.driver.request_event()

    def events(self) -> list[int]:
        """Completion dwords 0 of the event requests completed since the last call."""
        return self.driver.poll_events()

    def notifications(self) -> list[ChunkNotification]:
        """The chunk notification log (0xD0), newest first; reading it re-arms the event."""
        size = ctypes.sizeof(ChunkNotification)
        raw = self._get_log(Ocssd2LogPage.CHUNK_NOTIFICATION, 64 * size)
        out = [ChunkNotification.from_buffer_copy(raw[i * size:(i + 1) * size].tobytes()) for i in range(64)]
        return [e for e in out if e.nc]

    # ------------------------------------------------------------ vector commands
    def erase(self, addrs, with_descriptors: bool = False):
        """Reset chunks (nvm_cmd_erase): addresses name chunks (their sector is ignored).
        With `with_descriptors`, the chunks' descriptors after the reset (the device
        writes them through the metadata pointer)."""
        lbas = self.lbas(addrs)
        desc = np.zeros(lbas.size, dtype=CHUNK_DESC_DTYPE) if with_descriptors else None
        self._vector(ChunkOpc.VECTOR_RESET, lbas, desc=desc)
        return desc

    def write(self, addrs, data, meta=None) -> None:
        """Write sectors at chunks' write pointers (nvm_cmd_write): one sector of `data`
        (and nbytes_oob of `meta`) per address, whole ws_min units per chunk."""
        lbas = self.lbas(addrs)
        data = np.asarray(data).reshape(-1).view(np.uint8)
        if data.nbytes < lbas.size * self.geo.nbytes:
            raise LightnvmError(f"write of {lbas.size} sectors needs {lbas.size * self.geo.nbytes} bytes, "
                                f"got {data.nbytes}")
        if meta is not None:
            meta = np.asarray(meta).reshape(-1).view(np.uint8)
            if meta.nbytes < lbas.size * self.geo.nbytes_oob:
                raise LightnvmError(f"metadata for {lbas.size} sectors needs {lbas.size * self.geo.nbytes_oob} "
                                    f"bytes, got {meta.nbytes}")
        self._vector(ChunkOpc.VECTOR_WRITE, lbas, data=data, meta=meta)

    def read(self, addrs, out=None, with_meta: bool = False):
        """(data, meta) of the sectors (nvm_cmd_read); meta is None unless with_meta. On
        NvmError, e.data / e.meta hold what was read, zeros where the LBA failed."""
        lbas = self.lbas(addrs)
        n = lbas.size
        if out is None:
            out = np.empty(n * self.geo.nbytes, dtype=np.uint8)
        out = out.reshape(-1).view(np.uint8)
        if out.nbytes < n * self.geo.nbytes:
            raise LightnvmError(f"read buffer of {out.nbytes} bytes is short of {n * self.geo.nbytes}")
        meta = np.empty(n * self.geo.nbytes_oob, dtype=np.uint8) if with_meta else None
        if n == 1 and not with_meta:                    # the 4 KiB read: one command, no lists
            at = self.driver.guest_addr(out)
            if at is not None:
                st = self._read_at(int(lbas[0]), at)
                if st:
                    raise NvmError(np.array([st], dtype=np.uint16), "read of 1 LBA(s)", data=out)
                return out[:self.geo.nbytes], None
        self._vector(ChunkOpc.VECTOR_READ, lbas, out=out, meta=meta)
        return out[:n * self.geo.nbytes], meta

    def _read_at(self, lba: int, at: int) -> int:
        """One LBA into guest RAM at `at`: its status (0 for HIGH_ECC too)."""
        secb = self.geo.nbytes
        off = at % 4096
        prp2 = 0 if off + secb <= 4096 else at - off + 4096
        st, _ = self.driver.submit_one(1, _READ, self.nsid, 0, at, prp2, lba & 0xFFFFFFFF, lba >> 32, 0, secb)
        if st == _HIGH_ECC:
            self.counters["high_ecc_lbas"] += 1
            return 0
        return st

    def copy(self, src, dst) -> None:
        """Copy sectors inside the device, OOB included (nvm_cmd_copy): src[i] to dst[i],
        the destinations under the write rules."""
        s, d = self.lbas(src), self.lbas(dst)
        if s.size != d.size:
            raise LightnvmError(f"copy of {s.size} source(s) to {d.size} destination(s)")
        self._vector(ChunkOpc.VECTOR_COPY, s, dst=d)

    # ------------------------------------------------------------ the I/O path
    def _vector(self, opcode: int, lbas: np.ndarray, data=None, out=None, meta=None, dst=None, desc=None):
        """Split into commands of <= 64 LBAs, BATCH per doorbell; NvmError with one status
        per LBA when any fails (several LBAs failing a read differently are read again
        alone to learn their own)."""
        g, drv = self.geo, self.driver
        n = lbas.size
        if n == 0:
            raise LightnvmError("no addresses")
        secb, sos = g.nbytes, g.nbytes_oob
        moves = opcode in (ChunkOpc.VECTOR_WRITE, ChunkOpc.VECTOR_READ)
        reading = opcode == ChunkOpc.VECTOR_READ
        buf = data if data is not None else out
        addr = drv.guest_addr(buf) if moves else None
        stage = self._stage
        statuses = None
        ambiguous = []
        per_bell = MAX_LBAS * self._batch
        lists = self._list_u64
        for b0 in range(0, n, per_bell):
            b1 = min(n, b0 + per_bell)
            cnt = b1 - b0
            m = -(-cnt // MAX_LBAS)
            sq = np.zeros(m, dtype=SQE_DTYPE)
            sq["opcode"], sq["nsid"] = opcode, self.nsid
            counts = np.full(m, MAX_LBAS, dtype=np.int64)
            counts[-1] = cnt - (m - 1) * MAX_LBAS
            sq["cdw12"] = counts - 1
            first = b0 + np.arange(m) * MAX_LBAS
            for c in range(m):
                k = int(counts[c])
                s = int(first[c])
                for which, arr, lo, hi in ((0, lbas, "cdw10", "cdw11"), (1, dst, "cdw14", "cdw15")):
                    if arr is None:
                        continue
                    if k == 1:
                        v = int(arr[s])
                    else:
                        lists[which, c, :k] = arr[s:s + k]
                        v = self._lists.addr + ((which * self._batch + c) * MAX_LBAS) * 8
                    sq[lo][c], sq[hi][c] = v & 0xFFFFFFFF, v >> 32
            nbytes = 0
            if moves:
                if addr is None:
                    a0 = stage.addr
                    if not reading:
                        stage.array[:cnt * secb] = data[b0 * secb:b1 * secb]
                else:
                    a0 = addr + b0 * secb
                sq["prp1"], sq["prp2"] = drv.prps_run(1, a0, MAX_LBAS * secb, m, int(counts[-1]) * secb)
                nbytes = cnt * secb
            if meta is not None:
                sq["mptr"] = self._metas.addr + (first - b0) * sos
                if not reading:
                    self._metas.array[:cnt * sos] = meta[b0 * sos:b1 * sos]
                nbytes += cnt * sos
            if desc is not None:
                per = CHUNK_DESC_DTYPE.itemsize
                sq["mptr"] = self._stage.addr + (first - b0) * per
            cst, cres = drv.submit_array(1, sq, nbytes)
            if reading and addr is None:
                out[b0 * secb:b1 * secb] = stage.array[:cnt * secb]
            if reading and meta is not None:
                meta[b0 * sos:b1 * sos] = self._metas.array[:cnt * sos]
            if desc is not None:
                desc.view(np.uint8)[b0 * per:b1 * per] = stage.array[:cnt * per]
            if not np.count_nonzero(cst):
                continue
            for c in np.flatnonzero(cst).tolist():
                st, res, k, s = int(cst[c]), int(cres[c]), int(counts[c]), int(first[c])
                bits = (np.unpackbits(np.frombuffer(res.to_bytes(8, "little"), np.uint8), bitorder="little")[:k]
                        .astype(bool) if res else np.ones(k, dtype=bool))
                if st == _HIGH_ECC:                     # the data is good: a hint to refresh it
                    self.counters["high_ecc_lbas"] += int(bits.sum())
                    continue
                if statuses is None:
                    statuses = np.zeros(n, dtype=np.uint16)
                statuses[s:s + k][bits] = st
                if reading and st != _UNWRITTEN and np.count_nonzero(bits) > 1:
                    ambiguous.extend((s + np.flatnonzero(bits)).tolist())
        for i in ambiguous:                             # each failed LBA alone: its own status
            statuses[i] = self._read_alone(int(lbas[i]), out[i * secb:(i + 1) * secb],
                                           None if meta is None else meta[i * sos:(i + 1) * sos])
        if statuses is not None and np.count_nonzero(statuses):
            what = {ChunkOpc.VECTOR_RESET: "reset", ChunkOpc.VECTOR_WRITE: "write", ChunkOpc.VECTOR_READ: "read",
                    ChunkOpc.VECTOR_COPY: "copy"}[ChunkOpc(opcode)]
            raise NvmError(statuses, f"{what} of {n} LBA(s)", data=out if reading else None, meta=meta)

    def _read_alone(self, lba: int, out: np.ndarray, meta_out) -> int:
        """One LBA read alone into out (and meta_out): its own status (0: read, HIGH_ECC too)."""
        secb, sos = self.geo.nbytes, self.geo.nbytes_oob
        self.counters["rereads"] += 1
        drv = self.driver
        prp1, prp2 = drv.prps(1, 0, self._stage.addr, secb)
        mptr = self._metas.addr if meta_out is not None else 0
        st, _ = drv.submit_one(1, _READ, self.nsid, mptr, prp1, prp2, lba & 0xFFFFFFFF, lba >> 32, 0,
                               secb + (sos if meta_out is not None else 0))
        out[:] = self._stage.array[:secb]
        if meta_out is not None:
            meta_out[:] = self._metas.array[:sos]
        if st == _HIGH_ECC:
            self.counters["high_ecc_lbas"] += 1
            return 0
        return st
