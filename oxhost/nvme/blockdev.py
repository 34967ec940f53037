"""NvmeBlockDevice: a BlockDevice over namespace 1 of an NVMe controller in AppNVM mode
(the device runs the FTL). Reads and writes are split at MDTS and several commands go
out per doorbell; buffers that live in guest RAM are used in place (SPEC 9)."""
import ctypes
import logging

import numpy as np

from oxemu.wire import (SMART_DATA_UNIT_NBYTES, AdminOpc, Cns, MediaMode, FtlLog, IdNs, LogPage, NvmOpc, SmartLog,
                        Status)

from ..blockdev import BlockDevice, BlockDeviceError
from ..driver import DriverError, NvmeDriver, OutOfDmaMemory
from .errors import NotAppNvm, NvmeIoError, NvmeMediaError, io_error

log = logging.getLogger(__name__)

QID = 1
NSID = 1
BATCH = 8                       # commands per doorbell
MAX_CMD_NBYTES = 1 << 20        # never more per command than this, whatever MDTS allows
ONCS_DSM = 1 << 2
DSM_AD = 1 << 2
DSM_MAX_RANGES = 256
DSM_RANGE = np.dtype([("cattr", "<u4"), ("nlb", "<u4"), ("slba", "<u8")])
_U8 = np.dtype(np.uint8)
_READ, _WRITE = int(NvmOpc.READ), int(NvmOpc.WRITE)     # plain ints on the per-request path


class NvmeBlockDevice(BlockDevice):
    """A standard NVMe namespace of 4 KiB LBAs, driven through the user-space driver."""

    def __init__(self, driver: NvmeDriver, nlbas: int, oncs: int, media_mode: MediaMode = MediaMode.APPNVM):
        self.driver = driver
        self.media_mode = media_mode    # AppNVM, or a plug-in FTL in the device (DEVICE_FTL)
        self.nlbas = nlbas
        self.oncs = oncs
        sb = self.sector_nbytes
        self.cmd_nbytes = max(sb, min(driver.max_transfer, MAX_CMD_NBYTES)) // sb * sb
        self.cmd_sectors = self.cmd_nbytes // sb
        self.batch = max(1, min(BATCH, driver.queues[QID].depth - 1))
        pool = driver.pool
        while True:                                 # a smaller batch when guest RAM is short
            try:
                self._stage = pool.alloc(self.batch * self.cmd_nbytes, zero=False)
                break
            except OutOfDmaMemory:
                if self.batch == 1:
                    raise
                self.batch //= 2
        self._dsm = pool.alloc(DSM_MAX_RANGES * DSM_RANGE.itemsize)
        self._dsm_ranges = self._dsm.array.view(DSM_RANGE)
        self.counters = dict(reads=0, writes=0, flushes=0, discards=0, read_cmds=0, write_cmds=0,
                             bytes_read=0, bytes_written=0, sectors_discarded=0, zero_copy=0)
        self._closed = False

    @classmethod
    def open(cls, machine, **driver_kw) -> "NvmeBlockDevice":
        """Bring the controller up and size the device from identify namespace."""
        driver = NvmeDriver(machine, **driver_kw)
        try:
            ns = IdNs.from_buffer_copy(driver.identify(Cns.NAMESPACE, nsid=NSID))
            if ns.vs[0] == 1:
                raise NotAppNvm("namespace 1 is an open-channel (LightNVM) namespace: the device runs "
                                "with lnvm > 0; use pblk over it, or start the device with lnvm=0")
            fmt = ns.lbaf[ns.flbas & 0xF]
            if fmt.ds != 12 or fmt.ms:
                raise NotAppNvm(f"namespace 1 has {1 << fmt.ds}-byte LBAs with {fmt.ms} metadata bytes; "
                                "only 4096-byte LBAs are supported")
            if ns.nsze == 0:
                raise NotAppNvm("namespace 1 has no capacity")
            return cls(driver, int(ns.nsze), int(driver.id_ctrl.oncs), MediaMode(driver.media_label().mode))
        except BaseException:
            driver.shutdown()
            raise

    # ------------------------------------------------------------ BlockDevice
    @property
    def size(self) -> int:
        return self.nlbas * self.sector_nbytes

    def read_sectors(self, lba: int, count: int, out: np.ndarray | None = None) -> np.ndarray:
        """count sectors from lba; into `out` when given (in place when it is in guest RAM)."""
        self._check(lba, count)
        n = count * self.sector_nbytes
        if out is None:
            out = np.empty(n, dtype=np.uint8)
        else:
            if out.ndim != 1 or out.dtype is not _U8:
                out = out.reshape(-1).view(np.uint8)
            if out.nbytes < n:
                raise BlockDeviceError(f"read buffer of {out.nbytes} bytes is short of {n}")
            if out.nbytes > n:
                out = out[:n]
        self._rw(_READ, lba, count, out)
        self.counters["reads"] += 1
        self.counters["bytes_read"] += n
        return out

    read_into = read_sectors            # in place when out is in guest RAM

    def write_sectors(self, lba: int, data: np.ndarray) -> None:
        if not isinstance(data, np.ndarray) or data.ndim != 1 or data.dtype is not _U8:
            data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if data.nbytes % self.sector_nbytes:
            raise BlockDeviceError(f"write of {data.nbytes} bytes is not whole {self.sector_nbytes}-byte sectors")
        count = data.nbytes // self.sector_nbytes
        self._check(lba, count)
        self._rw(_WRITE, lba, count, data)
        self.counters["writes"] += 1
        self.counters["bytes_written"] += data.nbytes

    def flush(self) -> None:
        c = self.driver.submit(QID, [(NvmOpc.FLUSH, 0, NSID, 0, 0, 0, 0, 0, 0, 0, 0, 0)])[0]
        if c.status:
            raise io_error(c.status, "flush")
        self.counters["flushes"] += 1

    def discard_sectors(self, lba: int, count: int) -> None:
        """Dataset management, deallocate; a no-op on a device without DSM."""
        self._check(lba, count)
        if count == 0 or not self.oncs & ONCS_DSM:
            return
        maxr = 0xFFFF_FFFF
        ranges = [(s, min(maxr, lba + count - s)) for s in range(lba, lba + count, maxr)]
        for i in range(0, len(ranges), DSM_MAX_RANGES):
            chunk = ranges[i:i + DSM_MAX_RANGES]
            r = self._dsm_ranges
            r[:] = 0
            for j, (s, k) in enumerate(chunk):
                r[j] = (0, k, s)
            c = self.driver.submit(QID, [(NvmOpc.DSM, 0, NSID, 0, self._dsm.addr, 0,
                                          len(chunk) - 1, DSM_AD, 0, 0, 0, 0)],
                                   nbytes=len(chunk) * DSM_RANGE.itemsize)[0]
            if c.status:
                raise io_error(c.status, f"deallocate of {count} sectors at {lba}")
        self.counters["discards"] += 1
        self.counters["sectors_discarded"] += count

    def background(self) -> bool:
        """The host is idle: tell the device (OX vendor admin 0xC2), whose FTL may collect
        garbage now; True while it has more to do."""
        if self._closed:
            return False
        c = self.driver.admin(AdminOpc.OX_IDLE)
        if c.status:
            raise io_error(c.status, "idle hint")
        return bool(c.result)

    def smart(self) -> dict:
        """The SMART / health log page (NVMe 1.2, figure 94), the fields this device fills."""
        raw = self.driver.get_log_page(LogPage.SMART, ctypes.sizeof(SmartLog))
        log_ = SmartLog.from_buffer_copy(raw)

        def u128(v):
            return v[0] | (v[1] << 64)

        return dict(critical_warning=log_.critical_warning, temperature_k=log_.temperature,
                    available_spare=log_.avail_spare, data_units_read=u128(log_.data_units_read),
                    data_units_written=u128(log_.data_units_written),
                    host_read_commands=u128(log_.host_reads), host_write_commands=u128(log_.host_writes),
                    power_cycles=u128(log_.power_cycles), unsafe_shutdowns=u128(log_.unsafe_shutdowns),
                    media_errors=u128(log_.media_errors), error_log_entries=u128(log_.num_err_log_entries),
                    data_unit_nbytes=SMART_DATA_UNIT_NBYTES)

    def ftl(self) -> dict:
        """The device FTL's lifetime counters (vendor log page 0xC1), in pblk's terms."""
        f = FtlLog.from_buffer_copy(self.driver.get_log_page(LogPage.OX_FTL, ctypes.sizeof(FtlLog)))
        user, gc, pad, meta = f.user_sectors, f.gc_sectors, f.pad_sectors, f.meta_sectors
        return dict(
            user_sectors=user, gc_sectors=gc, pad_sectors=pad, meta_sectors=meta,
            write_amplification=round((user + gc + pad) / user, 4) if user else 0.0,
            media_write_amplification=round((user + gc + pad + meta) / user, 4) if user else 0.0,
            gc_runs=f.gc_runs, gc_sectors_moved=gc, erases=f.erases,
            discarded_sectors=f.discarded_sectors, valid_sectors=f.valid_sectors,
            capacity_sectors=f.capacity_sectors, checkpoints=f.checkpoints,
            host_sectors_written=f.host_sectors_written, host_sectors_read=f.host_sectors_read,
            free_blocks=f.free_blocks, good_blocks=f.good_blocks, total_blocks=f.total_blocks,
            bad_blocks={"factory": f.factory_bad_blocks, "grown": f.grown_bad_blocks},
            read_only=bool(f.read_only), program_fails=f.program_fails, erase_fails=f.erase_fails,
            read_retries=f.read_retries, unrecovered_reads=f.unrecovered_reads,
            counters_persist=True)

    def stats(self) -> dict:
        appnvm = self.media_mode == MediaMode.APPNVM
        out = dict(mode="appnvm" if appnvm else "ftl@device", size=self.size, sector_nbytes=self.sector_nbytes,
                   max_command_nbytes=self.cmd_nbytes, host=dict(self.counters),
                   driver=dict(self.driver.stats))
        if not self._closed:
            try:
                out["smart"] = self.smart()
                if appnvm:                  # its FTL log page (a plug-in FTL has none)
                    out.update(self.ftl())
            except (DriverError, NvmeIoError) as e:
                log.warning("device logs unavailable: %s", e)
        return out

    def ftl_params(self) -> dict:
        """What the host sees of the namespace: its size and the largest command it sends.
        The FTL is in the device: its choices are the device's to report."""
        return dict(capacity_bytes=self.size, mode="appnvm" if self.media_mode == MediaMode.APPNVM else "ftl@device",
                    max_command_nbytes=self.cmd_nbytes)

    def close(self) -> None:
        """Flush, then a normal controller shutdown (the device checkpoints its map)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            for b in (self._stage, self._dsm):
                b.free()
            self.driver.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ buffers
    def buf_alloc(self, nbytes: int) -> np.ndarray:
        """A zeroed buffer in guest RAM: I/O to and from it needs no bounce copy."""
        return self.driver.buf_alloc(nbytes)

    def buf_free(self, arr: np.ndarray) -> None:
        if not self.driver.buf_free(arr):
            raise BlockDeviceError("buf_free: not a buffer from buf_alloc")

    # ------------------------------------------------------------ the I/O path
    def _check(self, lba: int, count: int) -> None:
        if self._closed:
            raise BlockDeviceError("the NVMe block device is closed")
        if lba < 0 or count < 0 or lba + count > self.nlbas:
            raise BlockDeviceError(f"sectors [{lba}, +{count}) outside the device of {self.nlbas} sectors")

    def _rw(self, opcode: int, lba: int, count: int, buf: np.ndarray) -> None:
        """Commands of at most cmd_sectors, `batch` per doorbell; bounce through the
        staging buffer unless buf is in guest RAM."""
        if count == 0:
            return
        sb = self.sector_nbytes
        drv = self.driver
        addr = drv.guest_addr(buf)
        counters = self.counters
        writing = opcode == _WRITE
        if addr is not None:
            counters["zero_copy"] += 1
            if count <= self.cmd_sectors:               # one command from the caller's buffer
                p1, p2 = drv.prps(QID, 0, addr, count * sb)
                st, _ = drv.submit_one(QID, opcode, NSID, 0, p1, p2, lba & 0xFFFF_FFFF, lba >> 32, count - 1,
                                       count * sb)
                counters["write_cmds" if writing else "read_cmds"] += 1
                if st:
                    self._failed(writing, lba, count, [((0, count), st)], buf)
                return
        stage, stage_addr, cn = self._stage.array, self._stage.addr, self.cmd_nbytes
        per = self.cmd_sectors
        pos = 0
        while pos < count:
            cmds, spans = [], []
            moved = 0
            for slot in range(self.batch):
                if pos >= count:
                    break
                k = min(per, count - pos)
                nbytes = k * sb
                if addr is not None:
                    a = addr + pos * sb
                else:
                    a = stage_addr + slot * cn
                    if writing:
                        stage[slot * cn:slot * cn + nbytes] = buf[pos * sb:pos * sb + nbytes]
                p1, p2 = drv.prps(QID, slot, a, nbytes)
                s = lba + pos
                cmds.append((opcode, 0, NSID, 0, p1, p2, s & 0xFFFF_FFFF, s >> 32, k - 1, 0, 0, 0))
                spans.append((pos, k))
                pos += k
                moved += nbytes
            comps = drv.submit(QID, cmds, nbytes=moved)
            if writing:
                self.counters["write_cmds"] += len(cmds)
            else:
                self.counters["read_cmds"] += len(cmds)
                if addr is None:
                    for slot, (p, k) in enumerate(spans):
                        buf[p * sb:(p + k) * sb] = stage[slot * cn:slot * cn + k * sb]
            bad = [(span, c.status) for span, c in zip(spans, comps) if c.status]
            if bad:
                self._failed(writing, lba, count, bad, buf)

    def _failed(self, writing: bool, lba: int, count: int, bad, buf: np.ndarray) -> None:
        """Commands of a request failed ((pos, k) span, status each): the error to raise,
        after reading an unrecovered read's sectors again one by one."""
        what = f"{'write' if writing else 'read'} of {count} sectors at {lba}"
        if writing or any(st & ~Status.DNR != Status.UNRECOVERED_READ for _, st in bad):
            raise io_error(bad[0][1], what)
        failed = self._resolve_read(lba, [span for span, _ in bad], buf)
        if failed is not None:
            raise NvmeMediaError(bad[0][1], f"{what} ({int(failed.sum())} unreadable)",
                                 failed=failed, data=buf[:count * self.sector_nbytes])

    def _resolve_read(self, lba: int, spans, buf: np.ndarray) -> np.ndarray | None:
        """An unrecovered read fails a whole command: read its sectors again one by one, so
        the good ones are served and the bad ones named. None when all read this time."""
        sb = self.sector_nbytes
        nsec = buf.nbytes // sb
        failed = np.zeros(nsec, dtype=bool)
        one = self._stage.array[:sb]
        p1, _ = self.driver.prps(QID, 0, self._stage.addr, sb)
        for pos, k in spans:
            for i in range(pos, pos + k):
                s = lba + i
                c = self.driver.submit(QID, [(NvmOpc.READ, 0, NSID, 0, p1, 0, s & 0xFFFF_FFFF,
                                              s >> 32, 0, 0, 0, 0)], nbytes=sb)[0]
                if c.status:
                    failed[i] = True
                    buf[i * sb:(i + 1) * sb] = 0
                else:
                    buf[i * sb:(i + 1) * sb] = one
        return failed if failed.any() else None


