"""A zoned namespace as libzbd presents a zoned block device: its information, zone
reports, zone operations (open, close, finish, reset, offline) over a range of zones or
all of them, zone append, and reads and writes with the 16 bytes of metadata each LBA
carries -- over the user-space NVMe driver and the bus, nothing else.

Units are LBAs (4 KiB sectors), not libzbd's bytes: `report_zones(lba, nlbas)`,
`reset_zones(lba, nlbas)` and the rest take the first LBA of a zone and a length in
LBAs, whole zones; a length of 0 means every zone (the select-all flag of zone
management send, libzbd's `zbd_reset_zones(fd, 0, 0)`).
"""
import dataclasses

import numpy as np

from oxemu.wire import (CSI_ZNS, AdminOpc, Cns, IdCtrlZns, IdNs, IdNsZns, NvmOpc, ZoneAction, ZoneAttr,
                        ZoneDescriptor, ZoneReceiveAction, ZoneReportFilter, ZoneReportHeader, ZoneState,
                        ZONE_MGMT_SELECT_ALL, ZONE_REPORT_PARTIAL, ZONE_WP_INVALID)

from ..driver import NvmeDriver, OutOfDmaMemory
from ..nvme.admin import AdminStatusError, admin_read
from .errors import NotZoned, ZnsError, ZoneCommandError, ZoneRangeError

QID = 1
NSID = 1
MAX_CMD_NBYTES = 1 << 20         # never more per command than this, whatever MDTS allows
BATCH = 8                        # commands per doorbell
REPORT_NBYTES = 64 * 1024        # a report buffer: 1,023 descriptors


@dataclasses.dataclass(frozen=True)
class ZbdInfo:
    """libzbd's `struct zbd_info`, in LBAs: the namespace's zones and limits."""
    nr_zones: int
    zone_sectors: int            # zone size in LBAs (every zone the same)
    nr_lblocks: int              # namespace size in LBAs
    lblock_size: int             # bytes per LBA
    md_size: int                 # metadata bytes per LBA (the host's OOB)
    max_nr_open_zones: int       # 0: no limit
    max_nr_active_zones: int     # 0: no limit
    write_unit: int              # LBAs the device programs at once (NPWG): writes of whole units cost least
    max_transfer: int            # LBAs per read, write or append command

    @property
    def zone_size(self) -> int:
        return self.zone_sectors * self.lblock_size


@dataclasses.dataclass(frozen=True)
class Zone:
    """libzbd's `struct zbd_zone`, in LBAs: wp is None for a zone without a write pointer
    (full, read-only, offline)."""
    start: int
    len: int
    capacity: int
    wp: int | None
    cond: ZoneState
    attrs: ZoneAttr

    @property
    def index(self) -> int:
        return self.start // self.len

    @property
    def written(self) -> int:
        """LBAs written from the zone start (the capacity for a full zone)."""
        return self.wp - self.start if self.wp is not None else self.capacity


class ZonedDevice:
    """Namespace 1 of a device in zoned mode, opened through the user-space driver."""

    def __init__(self, driver: NvmeDriver, info: ZbdInfo):
        self.driver = driver
        self.info = info
        sb, md = info.lblock_size, info.md_size
        self.cmd_sectors = min(info.max_transfer, MAX_CMD_NBYTES // sb)
        self.batch = max(1, min(BATCH, driver.queues[QID].depth - 1))
        pool = driver.pool
        while True:                                   # a smaller batch when guest RAM is short
            try:
                self._stage = pool.alloc(self.batch * self.cmd_sectors * sb, zero=False)
                break
            except OutOfDmaMemory:
                if self.batch == 1:
                    raise
                self.batch //= 2
        self._meta = pool.alloc(self.batch * self.cmd_sectors * max(md, 1))
        self._report = pool.alloc(REPORT_NBYTES)
        self.counters = dict(reads=0, writes=0, appends=0, reports=0, zone_ops=0, sectors_read=0,
                             sectors_written=0)
        self._closed = False

    @classmethod
    def open(cls, machine, **driver_kw) -> "ZonedDevice":
        """Bring the controller up and learn the zones (libzbd's zbd_open + zbd_get_info)."""
        driver = NvmeDriver(machine, **driver_kw)
        try:
            ns = IdNs.from_buffer_copy(driver.identify(Cns.NAMESPACE, nsid=NSID))
            try:
                zns = IdNsZns.from_buffer_copy(admin_read(driver, "identify ZNS namespace", AdminOpc.IDENTIFY,
                                                          4096, nsid=NSID, cdw10=Cns.CS_NAMESPACE,
                                                          cdw11=CSI_ZNS << 24))
                ctrl = IdCtrlZns.from_buffer_copy(admin_read(driver, "identify ZNS controller", AdminOpc.IDENTIFY,
                                                             4096, cdw10=Cns.CS_CONTROLLER, cdw11=CSI_ZNS << 24))
            except AdminStatusError:
                raise NotZoned("namespace 1 is not a zoned namespace (start the device with lnvm=0, "
                               "spec=\"zns\")") from None
            fmt = ns.flbas & 0xF
            lbaf, ext = ns.lbaf[fmt], zns.lbafe[fmt]
            sb = 1 << lbaf.ds
            if sb != 4096 or not ext.zsze or ns.nsze % ext.zsze:
                raise NotZoned(f"namespace 1 has {sb}-byte LBAs in zones of {ext.zsze}: only 4096-byte "
                               f"LBAs in whole zones are supported")
            per_cmd = driver.max_transfer // sb
            if ctrl.zasl:
                per_cmd = min(per_cmd, (4096 << ctrl.zasl) // sb)
            info = ZbdInfo(nr_zones=int(ns.nsze // ext.zsze), zone_sectors=int(ext.zsze), nr_lblocks=int(ns.nsze),
                           lblock_size=sb, md_size=int(lbaf.ms),
                           max_nr_open_zones=0 if zns.mor == 0xFFFF_FFFF else zns.mor + 1,
                           max_nr_active_zones=0 if zns.mar == 0xFFFF_FFFF else zns.mar + 1,
                           write_unit=int(ns.npwg) + 1, max_transfer=per_cmd)
            return cls(driver, info)
        except BaseException:
            driver.shutdown()
            raise

    def close(self) -> None:
        """Release the buffers and shut the controller down (zbd_close)."""
        if self._closed:
            return
        self._closed = True
        for b in (self._stage, self._meta, self._report):
            b.free()
        self.driver.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ zones
    def _zone_range(self, lba: int, nlbas: int) -> range:
        zs, nz = self.info.zone_sectors, self.info.nr_zones
        if lba < 0 or nlbas < 0 or lba % zs or nlbas % zs or lba // zs + nlbas // zs > nz:
            raise ZoneRangeError(f"LBAs {lba}+{nlbas}: not whole zones of {zs} LBAs within the {nz} zones")
        return range(lba // zs, lba // zs + nlbas // zs)

    def report_zones(self, lba: int = 0, nlbas: int = 0, ro: ZoneReportFilter = ZoneReportFilter.ALL) -> list[Zone]:
        """The zones from the one holding `lba` over `nlbas` LBAs (0: to the end) that the
        filter `ro` selects (zbd_report_zones). One report command per 1,023 zones, with the
        partial flag."""
        info = self.info
        if not 0 <= lba < info.nr_lblocks or nlbas < 0:
            raise ZoneRangeError(f"LBA {lba}+{nlbas} outside the namespace of {info.nr_lblocks} LBAs")
        first = lba // info.zone_sectors
        last = info.nr_zones if not nlbas else min(info.nr_zones, -(-(lba + nlbas) // info.zone_sectors))
        out: list[Zone] = []
        z = first
        room = (REPORT_NBYTES - 64) // 64
        while z < last:
            raw = self._report_cmd(z * info.zone_sectors, ro)
            n = int(ZoneReportHeader.from_buffer_copy(raw).nr_zones)
            descs = (ZoneDescriptor * n).from_buffer_copy(raw, 64) if n else []
            for d in descs:
                zone = _zone(d, info.zone_sectors)
                if zone.index >= last:
                    return out
                out.append(zone)
            if n < room:
                break
            z = out[-1].index + 1
        return out

    def _report_cmd(self, slba: int, ro: ZoneReportFilter) -> bytes:
        buf = self._report
        p1, p2 = self.driver.prps(QID, 0, buf.addr, REPORT_NBYTES)
        cdw13 = ZoneReceiveAction.REPORT | (int(ro) << 8) | ZONE_REPORT_PARTIAL
        c = self.driver.submit(QID, [(NvmOpc.ZONE_MGMT_RECV, 0, NSID, 0, p1, p2, slba & 0xFFFF_FFFF, slba >> 32,
                                      REPORT_NBYTES // 4 - 1, cdw13, 0, 0)], nbytes=REPORT_NBYTES)[0]
        if c.status:
            raise ZoneCommandError(c.status, f"report zones from LBA {slba}")
        self.counters["reports"] += 1
        return bytes(buf.array[:REPORT_NBYTES])

    def zone(self, index: int) -> Zone:
        if not 0 <= index < self.info.nr_zones:
            raise ZoneRangeError(f"zone {index} outside 0..{self.info.nr_zones - 1}")
        return self.report_zones(index * self.info.zone_sectors, self.info.zone_sectors)[0]

    def _zone_op(self, action: ZoneAction, lba: int, nlbas: int) -> None:
        """One zone management send per zone of the range, or one select-all for nlbas 0."""
        if nlbas == 0:
            if lba:
                raise ZoneRangeError("a length of 0 means every zone: give LBA 0")
            cmds = [(NvmOpc.ZONE_MGMT_SEND, 0, NSID, 0, 0, 0, 0, 0, 0, int(action) | ZONE_MGMT_SELECT_ALL, 0, 0)]
            what = f"{action.name.lower()} every zone"
            zones = None
        else:
            zones = self._zone_range(lba, nlbas)
            zs = self.info.zone_sectors
            cmds = [(NvmOpc.ZONE_MGMT_SEND, 0, NSID, 0, 0, 0, (z * zs) & 0xFFFF_FFFF, (z * zs) >> 32, 0,
                     int(action), 0, 0) for z in zones]
            what = None
        for i in range(0, len(cmds), self.batch):
            comps = self.driver.submit(QID, cmds[i:i + self.batch])
            self.counters["zone_ops"] += len(comps)
            for j, c in enumerate(comps):
                if c.status:
                    raise ZoneCommandError(c.status, what or f"{action.name.lower()} zone {zones[i + j]}")

    def open_zones(self, lba: int, nlbas: int) -> None:
        self._zone_op(ZoneAction.OPEN, lba, nlbas)

    def close_zones(self, lba: int, nlbas: int) -> None:
        self._zone_op(ZoneAction.CLOSE, lba, nlbas)

    def finish_zones(self, lba: int, nlbas: int) -> None:
        self._zone_op(ZoneAction.FINISH, lba, nlbas)

    def reset_zones(self, lba: int, nlbas: int) -> None:
        self._zone_op(ZoneAction.RESET, lba, nlbas)

    def offline_zones(self, lba: int, nlbas: int) -> None:
        self._zone_op(ZoneAction.OFFLINE, lba, nlbas)

    # ------------------------------------------------------------ data
    def _check_io(self, lba: int, count: int) -> None:
        if count < 1 or lba < 0 or lba + count > self.info.nr_lblocks:
            raise ZoneRangeError(f"LBAs {lba}+{count} outside the namespace of {self.info.nr_lblocks} LBAs")

    def _as_bytes(self, data) -> np.ndarray:
        data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        if data.nbytes % self.info.lblock_size or not data.nbytes:
            raise ZoneRangeError(f"{data.nbytes} bytes are not whole LBAs of {self.info.lblock_size}")
        return data

    def _meta_bytes(self, meta, count: int) -> np.ndarray | None:
        if meta is None:
            return None
        meta = np.ascontiguousarray(meta).reshape(-1).view(np.uint8)
        if meta.nbytes != count * self.info.md_size:
            raise ZoneRangeError(f"{meta.nbytes} metadata bytes for {count} LBAs of {self.info.md_size}")
        return meta

    def _run(self, opcode: int, spans: list, data: np.ndarray | None, meta: np.ndarray | None,
             out: np.ndarray | None, mout: np.ndarray | None) -> list:
        """Commands for spans [(slba field, LBAs, position in the buffers)], `batch` per
        doorbell, through the staging buffers; [(status, result)] in span order."""
        sb, md, cs = self.info.lblock_size, self.info.md_size, self.cmd_sectors
        stage, sm = self._stage, self._meta
        drv = self.driver
        res = []
        for i in range(0, len(spans), self.batch):
            cmds, moved = [], 0
            for slot, (slba, k, pos) in enumerate(spans[i:i + self.batch]):
                d = slot * cs * sb
                m = slot * cs * md
                if data is not None:
                    stage.array[d:d + k * sb] = data[pos * sb:(pos + k) * sb]
                    if meta is not None:
                        sm.array[m:m + k * md] = meta[pos * md:(pos + k) * md]
                p1, p2 = drv.prps(QID, slot, stage.addr + d, k * sb)
                mptr = sm.addr + m if (meta is not None or mout is not None) else 0
                cmds.append((opcode, 0, NSID, mptr, p1, p2, slba & 0xFFFF_FFFF, slba >> 32, k - 1, 0, 0, 0))
                moved += k * (sb + (md if mptr else 0))
            comps = drv.submit(QID, cmds, nbytes=moved)
            for slot, ((slba, k, pos), c) in enumerate(zip(spans[i:i + self.batch], comps)):
                if out is not None and not c.status:
                    d, m = slot * cs * sb, slot * cs * md
                    out[pos * sb:(pos + k) * sb] = stage.array[d:d + k * sb]
                    if mout is not None:
                        mout[pos * md:(pos + k) * md] = sm.array[m:m + k * md]
                res.append((c.status, c.result))
        return res

    def _spans(self, lba: int, count: int) -> list:
        return [(lba + p, min(self.cmd_sectors, count - p), p) for p in range(0, count, self.cmd_sectors)]

    def write(self, lba: int, data, meta=None) -> None:
        """Write whole LBAs at `lba` (a zone's write pointer), with their metadata."""
        data = self._as_bytes(data)
        count = data.nbytes // self.info.lblock_size
        self._check_io(lba, count)
        meta = self._meta_bytes(meta, count)
        spans = self._spans(lba, count)
        for (slba, k, _), (st, _) in zip(spans, self._run(NvmOpc.WRITE, spans, data, meta, None, None)):
            if st:
                raise ZoneCommandError(st, f"write of {k} LBAs at {slba}")
        self.counters["writes"] += 1
        self.counters["sectors_written"] += count

    def write_many(self, writes: list) -> list[int]:
        """Several writes [(lba, data, meta)] rung in together (up to `batch` commands per
        doorbell), so writes to zones on different LUNs run at once; the NVMe status of
        each (0: written), in the order given. Nothing raises for a status."""
        datas, metas, spans, owner = [], [], [], []
        pos = 0
        for w, (lba, data, meta) in enumerate(writes):
            data = self._as_bytes(data)
            count = data.nbytes // self.info.lblock_size
            self._check_io(lba, count)
            datas.append(data)
            metas.append(self._meta_bytes(meta, count) if meta is not None
                         else np.zeros(count * self.info.md_size, np.uint8))
            for slba, k, p in self._spans(lba, count):
                spans.append((slba, k, pos + p))
                owner.append(w)
            pos += count
        out = [0] * len(writes)
        if not writes:
            return out
        res = self._run(NvmOpc.WRITE, spans, np.concatenate(datas), np.concatenate(metas), None, None)
        for w, (st, _) in zip(owner, res):
            if st and not out[w]:
                out[w] = int(st)
        self.counters["writes"] += len(writes)
        self.counters["sectors_written"] += pos
        return out

    def append(self, zone: int, data, meta=None) -> int:
        """Zone append: the data lands at the zone's write pointer; returns the first LBA
        it was written at (from the completion)."""
        return self.append_many(zone, [data], None if meta is None else [meta])[0]

    def append_many(self, zone: int, datas: list, metas: list | None = None) -> list[int]:
        """Several zone appends to one zone, rung in together (up to `batch` per doorbell):
        each lands somewhere at the write pointer, at distinct LBAs; returns each one's
        first LBA, in the order given. ZoneCommandError for the first that failed."""
        if not 0 <= zone < self.info.nr_zones:
            raise ZoneRangeError(f"zone {zone} outside 0..{self.info.nr_zones - 1}")
        zslba = zone * self.info.zone_sectors
        parts = [self._as_bytes(d) for d in datas]
        sb = self.info.lblock_size
        counts = [p.nbytes // sb for p in parts]
        if max(counts) > self.cmd_sectors:
            raise ZoneRangeError(f"an append of {max(counts)} LBAs exceeds the {self.cmd_sectors} one command takes")
        data = np.concatenate(parts)
        meta = None
        if metas is not None:
            meta = np.concatenate([self._meta_bytes(m, c) for m, c in zip(metas, counts)])
        pos = np.concatenate([[0], np.cumsum(counts)[:-1]]).tolist()
        spans = [(zslba, c, p) for c, p in zip(counts, pos)]
        res = self._run(NvmOpc.ZONE_APPEND, spans, data, meta, None, None)
        for (st, _), c in zip(res, counts):
            if st:
                raise ZoneCommandError(st, f"append of {c} LBAs to zone {zone}")
        self.counters["appends"] += len(res)
        self.counters["sectors_written"] += sum(counts)
        return [int(r) for _, r in res]

    def read(self, lba: int, count: int, out: np.ndarray | None = None, with_meta: bool = False):
        """(data, metadata or None) of LBAs lba .. lba + count - 1; never-written ones read as
        zeros. ZoneCommandError for a command that failed (UNRECOVERED_READ: read the LBAs
        one by one to find which)."""
        self._check_io(lba, count)
        sb, md = self.info.lblock_size, self.info.md_size
        out = np.empty(count * sb, np.uint8) if out is None else out.reshape(-1).view(np.uint8)[:count * sb]
        mout = np.zeros(count * md, np.uint8) if with_meta else None
        spans = self._spans(lba, count)
        for (slba, k, _), (st, _) in zip(spans, self._run(NvmOpc.READ, spans, None, None, out, mout)):
            if st:
                raise ZoneCommandError(st, f"read of {k} LBAs at {slba}")
        self.counters["reads"] += 1
        self.counters["sectors_read"] += count
        return out, mout

    def read_one(self, lba: int, out: np.ndarray, mout: np.ndarray | None) -> int:
        """One LBA into out (and its metadata into mout): the NVMe status (0: read). The
        4 KiB read's path: one command, plain integers."""
        sb, md = self.info.lblock_size, self.info.md_size
        stage, sm = self._stage, self._meta
        p1, p2 = self.driver.prps(QID, 0, stage.addr, sb)
        st, _ = self.driver.submit_one(QID, NvmOpc.READ, NSID, sm.addr if mout is not None else 0, p1, p2,
                                       lba & 0xFFFF_FFFF, lba >> 32, 0, sb + (md if mout is not None else 0))
        if not st:
            out[:sb] = stage.array[:sb]
            if mout is not None:
                mout[:md] = sm.array[:md]
        self.counters["sectors_read"] += 1
        return int(st)

    def read_sectors_status(self, lbas: np.ndarray, out: np.ndarray, mout: np.ndarray | None) -> np.ndarray:
        """Read scattered LBAs (runs of consecutive ones share a command) into out / mout;
        the NVMe status of each LBA's command (0: read)."""
        lbas = np.asarray(lbas, dtype=np.int64)
        st = np.zeros(lbas.size, np.uint16)
        if not lbas.size:
            return st
        if lbas.min() < 0 or lbas.max() >= self.info.nr_lblocks:
            raise ZoneRangeError(f"LBA outside the namespace of {self.info.nr_lblocks} LBAs")
        brk = np.flatnonzero(np.diff(lbas) != 1) + 1
        starts = np.concatenate([[0], brk])
        ends = np.concatenate([brk, [lbas.size]])
        spans = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            for p in range(s, e, self.cmd_sectors):
                spans.append((int(lbas[p]), min(self.cmd_sectors, e - p), p))
        for (slba, k, p), (s, _) in zip(spans, self._run(NvmOpc.READ, spans, None, None, out, mout)):
            st[p:p + k] = s
        self.counters["sectors_read"] += int(lbas.size)
        return st

    def flush(self) -> None:
        c = self.driver.submit(QID, [(NvmOpc.FLUSH, 0, NSID, 0, 0, 0, 0, 0, 0, 0, 0, 0)])[0]
        if c.status:
            raise ZoneCommandError(c.status, "flush")


def _zone(d: ZoneDescriptor, zs: int) -> Zone:
    try:
        cond = ZoneState(d.zs >> 4)
    except ValueError:
        raise ZnsError(f"zone at LBA {d.zslba} reports an unknown state 0x{d.zs >> 4:x}") from None
    return Zone(start=int(d.zslba), len=zs, capacity=int(d.zcap),
                wp=None if d.wp == ZONE_WP_INVALID else int(d.wp), cond=cond, attrs=ZoneAttr(d.za))

