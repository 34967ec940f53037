"""Zoned namespace mode (`Machine(lnvm=0, spec="zns")`): namespace 1 is an NVMe Zoned
Namespace (ZNS 1.1) on the VOLT media -- read, write, flush, zone append, zone management
send and receive -- with 4 KiB LBAs and 16 bytes of metadata per LBA (the host's OOB,
through the command's metadata pointer). The host places data in zones; the device keeps
zone states, write pointers and resources (zones.py) and the data (backing.py).

Power: writes are durable on completion (the write buffer is power-loss protected), so
the volatile write cache is absent (VWC 0) and flush has nothing to do. A controller
reset, a shutdown and a power cut alike leave every open zone closed -- an opened zone
that holds nothing becomes empty again, unless it was opened explicitly (ZNS 1.1,
2.1.1.4: closed).

Read-only media (the label says so, or the disk file was opened read-only): writes,
appends and zone management send complete NS_WRITE_PROTECTED; reads and reports work.
"""
import logging

import numpy as np

from ...machine.dma import DmaError
from ...volt import StoreError, describe
from ...wire import (CSI_ZNS, IdCtrlZns, IdNs, IdNsZns, MediaLabel, MediaMode, NvmOpc, Status, TargetKind,
                     ZoneAction, ZoneDescriptor, ZoneReceiveAction, ZoneReportFilter, ZoneReportHeader,
                     ZoneType, ZONE_MGMT_SELECT_ALL, ZONE_REPORT_PARTIAL, ZONE_WP_INVALID, AdminOpc)
from ..errors import CommandError
from ..identity import identify_controller
from ..mode import DeviceMode
from ..prp import Transfer
from .backing import ZoneBacking
from .layout import ZONE_SHAPE, ShapeError, ZoneLayout
from .params import ZnsParams
from .zones import EMPTY, EO, IO, CLOSED, FULL, OFFLINE, RO, ZoneTable

log = logging.getLogger(__name__)

MAX_IO_NBYTES = 1 << 20          # MDTS: 1 MiB per command (zone append too: ZASL 0)
NSID_ALL = 0xFFFF_FFFF
_WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR
_FILTER = {ZoneReportFilter.EMPTY: EMPTY, ZoneReportFilter.IMPLICITLY_OPEN: IO,
           ZoneReportFilter.EXPLICITLY_OPEN: EO, ZoneReportFilter.CLOSED: CLOSED, ZoneReportFilter.FULL: FULL,
           ZoneReportFilter.READ_ONLY: RO, ZoneReportFilter.OFFLINE: OFFLINE}
_HAS_WP = (EMPTY, IO, EO, CLOSED)
# which zones a select-all action applies to (ZNS 1.1, 3.4.3)
_SELECT_ALL = {ZoneAction.OPEN: (CLOSED,), ZoneAction.CLOSE: (IO, EO), ZoneAction.FINISH: (IO, EO, CLOSED),
               ZoneAction.RESET: (IO, EO, CLOSED, FULL), ZoneAction.OFFLINE: (RO,)}


class ZnsMode(DeviceMode):
    """A zoned namespace over every LUN of the device."""

    media_mode = MediaMode.ZONED

    def __init__(self, core, dma, params: ZnsParams | None = None):
        super().__init__(core.volt.timing)
        self.core, self.dma, self.volt = core, dma, core.volt
        store = self.volt.store
        if store.nvram is None:
            raise StoreError(f"{store.path}: disk file format version {store.version} has no NVRAM region for "
                             f"zones; `ox format --disk {store.path} --mode zoned --yes` converts it (its data "
                             f"is lost, its bad block table kept)")
        self.params = params or ZnsParams()
        recorded = store.nvram.header[:ZONE_SHAPE.itemsize].view(ZONE_SHAPE)[0]
        try:
            self.lay = ZoneLayout(self.volt.geo, self.params, recorded)
        except ShapeError as e:
            raise StoreError(f"{store.path or 'the media'} {e}; open it without those settings") from None
        lay = self.lay
        self.zones = ZoneTable(lay.nzones, lay.zcap, lay.max_open, lay.max_active)
        self.zb = ZoneBacking(core, lay)
        self.sector_nbytes = self.volt.geo.sector_nbytes
        self.sos = self.volt.geo.meta_nbytes
        self.nlbas = lay.nlbas
        self.attrs = [0] * lay.nzones
        self.counters = dict(writes=0, appends=0, reads=0, flushes=0, sectors_written=0, sectors_read=0,
                             opens=0, closes=0, finishes=0, resets=0, offlines=0, reports=0,
                             implicit_closes=0)
        for z, (state, attrs) in enumerate(self.zb.recover()):
            self.zones.assign(z, state)
            self.zones.wp[z] = self.zb.wp(z)
            self.attrs[z] = attrs
        self._io = {NvmOpc.READ: self._read, NvmOpc.WRITE: self._write, NvmOpc.ZONE_APPEND: self._append,
                    NvmOpc.ZONE_MGMT_SEND: self._send, NvmOpc.ZONE_MGMT_RECV: self._report}

    # ------------------------------------------------------------ identify
    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)

    def identify_namespace(self) -> bytes:
        ns = IdNs()
        ns.nsze = ns.ncap = ns.nuse = self.nlbas
        ns.nlbaf = 0
        ns.flbas = 0                               # metadata in a separate buffer (MPTR)
        ns.lbaf[0].ds = 12                         # 4 KiB LBAs
        ns.lbaf[0].ms = self.sos                   # with 16 bytes of metadata each
        ns.npwg = ns.nows = self.lay.unit - 1      # a write unit: what the NAND programs at once
        return bytes(ns)

    def identify_cs(self, cns: int, csi: int) -> bytes | None:
        if csi != CSI_ZNS:
            return None
        if cns == 0x05:
            z = IdNsZns()
            z.zoc = 0
            z.ozcs = 1                             # reads may cross zone boundaries
            z.mar = self.lay.max_active - 1 if self.lay.max_active else 0xFFFF_FFFF
            z.mor = self.lay.max_open - 1 if self.lay.max_open else 0xFFFF_FFFF
            z.lbafe[0].zsze = self.lay.zsze
            z.lbafe[0].zdes = 0                    # no zone descriptor extensions
            return bytes(z)
        if cns == 0x06:
            return bytes(IdCtrlZns(zasl=0))        # zone append up to MDTS
        return None

    csi = CSI_ZNS

    def admin_commands(self) -> dict:
        return {AdminOpc.OX_SET_TARGET: self.set_target}

    # ------------------------------------------------------------ I/O
    def io(self, cmd, arrival_ns):
        op = cmd.opcode
        if op == NvmOpc.FLUSH:
            if cmd.nsid not in (1, NSID_ALL):
                return Status.INVALID_NS | Status.DNR, 0, arrival_ns
            self.counters["flushes"] += 1
            return Status.SUCCESS, 0, arrival_ns          # nothing volatile to flush
        handler = self._io.get(op)
        if handler is None:
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1:
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        if op != NvmOpc.READ and op != NvmOpc.ZONE_MGMT_RECV and self.volt.read_only:
            return _WRITE_PROTECTED, 0, arrival_ns
        self.zb.now = self.zb.done = arrival_ns
        status, result = handler(cmd)
        return status, result, self.zb.done

    def _range(self, cmd) -> tuple[int, int]:
        slba = cmd.cdw10 | (cmd.cdw11 << 32)
        n = (cmd.cdw12 & 0xFFFF) + 1
        if n * self.sector_nbytes > MAX_IO_NBYTES:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"{n} sectors exceed the maximum transfer")
        if slba + n > self.nlbas:
            raise CommandError(Status.LBA_RANGE | Status.DNR, f"LBAs {slba}+{n} beyond the namespace of {self.nlbas}")
        return slba, n

    def _meta(self, cmd, n: int) -> np.ndarray | None:
        if not cmd.mptr:
            return None
        try:
            return self.dma.view(cmd.mptr, n * self.sos)
        except DmaError as e:
            raise CommandError(Status.DATA_XFER_ERROR, str(e)) from None

    def _read(self, cmd):
        slba, n = self._range(cmd)
        zsze, sb = self.lay.zsze, self.sector_nbytes
        first, last = slba // zsze, (slba + n - 1) // zsze
        for z in range(first, last + 1):
            if self.zones.state[z] == OFFLINE:
                return Status.ZONE_OFFLINE | Status.DNR, 0
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, n * sb)
        meta = self._meta(cmd, n)
        sink = xfer.sink()
        out = sink if sink is not None else np.empty(n * sb, np.uint8)
        ok, pos = True, 0
        while pos < n:
            z, off = divmod(slba + pos, zsze)
            k = min(n - pos, zsze - off)
            m = meta[pos * self.sos:(pos + k) * self.sos] if meta is not None else None
            ok &= self.zb.read(z, off, k, out[pos * sb:(pos + k) * sb], m)
            pos += k
        if sink is None:
            xfer.write(out)
        self.counters["reads"] += 1
        self.counters["sectors_read"] += n
        self.bytes_read += n * sb
        return (Status.SUCCESS if ok else Status.UNRECOVERED_READ), 0

    def _write(self, cmd):
        slba, n = self._range(cmd)
        z, off = divmod(slba, self.lay.zsze)
        st = self.zones.write_refused(z)
        if st:
            return st, 0
        if off != self.zones.wp[z]:
            return Status.ZONE_INVALID_WRITE | Status.DNR, 0
        self._put(cmd, z, n)
        self.counters["writes"] += 1
        return Status.SUCCESS, 0

    def _append(self, cmd):
        zslba = cmd.cdw10 | (cmd.cdw11 << 32)
        n = (cmd.cdw12 & 0xFFFF) + 1
        if zslba >= self.nlbas:
            return Status.LBA_RANGE | Status.DNR, 0
        z, off = divmod(zslba, self.lay.zsze)
        if off:
            return Status.INVALID_FIELD | Status.DNR, 0          # ZSLBA must be a zone's first LBA
        if n * self.sector_nbytes > MAX_IO_NBYTES:
            return Status.INVALID_FIELD | Status.DNR, 0          # beyond ZASL (= MDTS)
        st = self.zones.write_refused(z)
        if st:
            return st, 0
        at = self.zones.wp[z]
        self._put(cmd, z, n)
        self.counters["appends"] += 1
        return Status.SUCCESS, zslba + at

    def _put(self, cmd, z: int, n: int) -> None:
        """n sectors at zone z's write pointer: checks, implicit open, the data, the state."""
        if self.zones.wp[z] + n > self.lay.zcap:
            raise CommandError(Status.ZONE_BOUNDARY_ERROR | Status.DNR, f"zone {z}: {n} sectors pass its capacity")
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, n * self.sector_nbytes)
        meta = self._meta(cmd, n)
        st, closed = self.zones.open(z, implicit=True)
        if closed is not None:
            self.counters["implicit_closes"] += 1
        if st:
            raise CommandError(st, f"zone {z}: no resource to open it")
        if self.zones.state[z] == IO and not self.zb.set_state(z, 0):   # what it holds decides after a cut
            self._went_offline(z)
            raise CommandError(Status.ZONE_OFFLINE | Status.DNR, f"zone {z}: its blocks failed to erase")
        data = xfer.read()
        if meta is None:
            meta = np.zeros(n * self.sos, np.uint8)
        try:
            self.zb.write(z, data, meta)
        finally:
            self._sync(z)
        self.counters["sectors_written"] += n
        self.bytes_written += n * self.sector_nbytes

    def _sync(self, z: int) -> None:
        """The zone table follows what landed: write pointer, and the state the backing
        decided (finished by the controller, read-only)."""
        zt = self.zones
        zt.advance(z, self.zb.wp(z) - zt.wp[z])
        state, attrs = self.zb.derived_state(z)
        if state in (FULL, RO) and zt.state[z] != state:
            zt.assign(z, state)
        self.attrs[z] = attrs

    # ------------------------------------------------------------ zone management
    def _zone_of(self, cmd) -> int:
        slba = cmd.cdw10 | (cmd.cdw11 << 32)
        if slba >= self.nlbas:
            raise CommandError(Status.LBA_RANGE | Status.DNR, f"LBA {slba} beyond the namespace")
        z, off = divmod(slba, self.lay.zsze)
        if off:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, f"LBA {slba} is not a zone's first LBA")
        return z

    def _send(self, cmd):
        action = cmd.cdw13 & 0xFF
        try:
            action = ZoneAction(action)
        except ValueError:
            return Status.INVALID_FIELD | Status.DNR, 0
        if action == ZoneAction.SET_ZONE_DESCRIPTOR_EXTENSION:
            return Status.INVALID_FIELD | Status.DNR, 0          # no extensions (zdes 0)
        if cmd.cdw13 & ZONE_MGMT_SELECT_ALL:
            want = _SELECT_ALL[action]
            zs = [z for z in range(self.lay.nzones) if self.zones.state[z] in want
                  or (action == ZoneAction.RESET and self.zones.state[z] == EMPTY and self.zb.dirty(z))]
        else:
            zs = [self._zone_of(cmd)]
        do = {ZoneAction.OPEN: self._open, ZoneAction.CLOSE: self._close, ZoneAction.FINISH: self._finish,
              ZoneAction.RESET: self._reset, ZoneAction.OFFLINE: self._offline}[action]
        for z in zs:
            st = do(z)
            if st:
                return st, 0
        return Status.SUCCESS, 0

    def _went_offline(self, z: int) -> int:
        """The reset a cut interrupted failed when it was finished: the zone is offline."""
        self.zones.assign(z, OFFLINE)
        return Status.ZONE_OFFLINE | Status.DNR

    def _open(self, z: int) -> int:
        st, closed = self.zones.open(z, implicit=False)
        if closed is not None:
            self.counters["implicit_closes"] += 1
        if st:
            return st
        if not self.zb.set_state(z, EO):
            return self._went_offline(z)
        self.counters["opens"] += 1
        return st

    def _close(self, z: int) -> int:
        st = self.zones.close(z)
        if st:
            return st
        if not self.zb.set_state(z, CLOSED if self.zones.wp[z] == 0 else 0):
            return self._went_offline(z)
        self.counters["closes"] += 1
        return st

    def _finish(self, z: int) -> int:
        st = self.zones.finish(z)
        if st:
            return st
        if not self.zb.set_state(z, FULL):
            return self._went_offline(z)
        self.counters["finishes"] += 1
        return st

    def _reset(self, z: int) -> int:
        st = self.zones.can_reset(z)
        if st:
            return st
        ok = True
        if self.zb.dirty(z):
            ok = self.zb.erase(z)
        self.zones.reset(z)
        self.attrs[z] = 0
        self.counters["resets"] += 1
        if not ok:
            self.zones.assign(z, OFFLINE)
            return Status.ZONE_OFFLINE | Status.DNR
        return Status.SUCCESS

    def _offline(self, z: int) -> int:
        st = self.zones.offline(z)
        if not st:
            self.zb.set_state(z, OFFLINE)          # read-only zones: no reset is ever due
            self.counters["offlines"] += 1
        return st

    def _report(self, cmd):
        slba = cmd.cdw10 | (cmd.cdw11 << 32)
        if slba >= self.nlbas:
            return Status.LBA_RANGE | Status.DNR, 0
        nbytes = (cmd.cdw12 + 1) * 4
        zra, zrasf = cmd.cdw13 & 0xFF, (cmd.cdw13 >> 8) & 0xFF
        if zra != ZoneReceiveAction.REPORT or zrasf > ZoneReportFilter.OFFLINE:
            return Status.INVALID_FIELD | Status.DNR, 0
        if nbytes < 64 or nbytes > MAX_IO_NBYTES:
            return Status.INVALID_FIELD | Status.DNR, 0
        want = _FILTER.get(ZoneReportFilter(zrasf))
        state = self.zones.state
        match = [z for z in range(slba // self.lay.zsze, self.lay.nzones) if want is None or state[z] == want]
        room = (nbytes - 64) // 64
        shown = match[:room]
        buf = np.zeros(nbytes, np.uint8)
        hdr = ZoneReportHeader(nr_zones=len(shown) if cmd.cdw13 & ZONE_REPORT_PARTIAL else len(match))
        buf[:64] = np.frombuffer(bytes(hdr), np.uint8)
        if shown:
            descs = (ZoneDescriptor * len(shown))()
            for d, z in zip(descs, shown):
                s = state[z]
                d.zt, d.zs, d.za = ZoneType.SEQ_WRITE_REQUIRED, int(s) << 4, self.attrs[z]
                d.zcap, d.zslba = self.lay.zcap, z * self.lay.zsze
                d.wp = d.zslba + self.zones.wp[z] if s in _HAS_WP else ZONE_WP_INVALID
            buf[64:64 + 64 * len(shown)] = np.frombuffer(bytes(descs), np.uint8)
        Transfer(self.dma, cmd.prp1, cmd.prp2, nbytes).write(buf)
        self.counters["reports"] += 1
        return Status.SUCCESS, 0

    # ------------------------------------------------------------ media label
    def set_target(self, cmd):
        """OX vendor 0xC1: record the host FTL using the zones (its name, version and
        capacity) in the media label, as open-channel mode records a host target; zones
        span every LUN, so no LUN range is kept. Another FTL's is INVALID_FIELD."""
        raw = Transfer(self.dma, cmd.prp1, cmd.prp2, 512).read()
        want = MediaLabel.from_buffer_copy(raw.tobytes())
        if want.target != TargetKind.FTL:
            return Status.INVALID_FIELD | Status.DNR, 0
        have = self.volt.label()
        same = (bytes(have.ftl_name), have.ftl_version) == (bytes(want.ftl_name), want.ftl_version)
        if have.target == TargetKind.FTL and same:
            if have.capacity_bytes or not want.capacity_bytes:
                return Status.SUCCESS, 0
            fields = dict(capacity_bytes=want.capacity_bytes)
        elif have.target == TargetKind.NONE:
            fields = dict(mode=MediaMode.ZONED, target=TargetKind.FTL, lun_begin=0, lun_end=0,
                          capacity_bytes=want.capacity_bytes,
                          ftl_name=bytes(want.ftl_name), ftl_version=want.ftl_version)
        else:
            log.warning("OX set target refused: %s", describe(have, "the media"))
            return Status.INVALID_FIELD | Status.DNR, 0
        if self.volt.read_only:
            return _WRITE_PROTECTED, 0
        self.volt.update_label(**fields)
        return Status.SUCCESS, 0

    # ------------------------------------------------------------ power
    def _close_open(self) -> None:
        """Controller reset or shutdown: every open zone is closed; an implicitly opened
        one that holds nothing is empty again (ZNS 1.1, 2.1.1.4)."""
        if self.volt.read_only or not self.volt.powered:
            return
        zt = self.zones
        for z in range(self.lay.nzones):
            s = zt.state[z]
            if s == IO and zt.wp[z] == 0:
                zt.assign(z, EMPTY)
            elif s in (IO, EO):
                zt.assign(z, CLOSED)
                if zt.wp[z] == 0:
                    self.zb.set_state(z, CLOSED)

    def reset(self) -> None:
        self._close_open()
        self.volt.flush()

    def shutdown(self) -> None:
        self._close_open()

    # ------------------------------------------------------------ reports
    def stats(self) -> dict:
        lay = self.lay
        return dict(mode="zns", zones=lay.nzones, zone_size_sectors=lay.zsze, zone_capacity_sectors=lay.zcap,
                    zone_luns=lay.zone_luns, max_open=lay.max_open, max_active=lay.max_active,
                    open_zones=self.zones.n_open, active_zones=self.zones.n_active,
                    zone_states=self.zones.counts(), **self.counters, media=dict(self.zb.counters),
                    erases=self.zb.counters["resets"])       # what a device FTL calls its block erases
