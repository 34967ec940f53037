"""ZoneMedia: the FTL API's Media over a zoned namespace, so any FTL written against it runs
on ZNS (stack mode `FILE.py:Class@host+zns`, and the built-in zoned FTL).

A zone is an erase block: erase = zone reset, a page is a write unit of the zone (the
LBAs the device programs at once, NPWG), programmed at the zone's write pointer; OOB is
the 16 bytes of metadata each LBA carries. The zones are dealt to `units` parallel units
round-robin (zone z is block z // units of unit z % units): consecutive zones lie on
different LUNs in this device, so units written in turn keep several LUN groups busy.
Pages per block: the zone capacity in whole write units.

What the NAND rules become here: a page not at its zone's write pointer is refused by the
device (ZONE_INVALID_WRITE) and fails like a program failure, nothing written; a page past
the write pointer reads EMPTY; a zone whose data is all written is finished when its
capacity leaves a partial unit, so it holds no active resource. The device moves past
failed programs itself; what still fails reaches the FTL as a program failure (the zone
ran out of spare units: finished by the controller, or read-only).

Bad blocks: offline zones. `mark_bad` takes a zone out of use: a read-only one goes
offline (for good); any other is finished and kept out of use until the media is opened
again -- on a zoned device the media's health is the device's business (a zone whose
blocks fail to erase goes offline by itself).

Open and active zones are limited: when the device refuses a write for want of either,
the least recently written other zone is finished to make room and the write retried.
"""
import logging

import numpy as np

from oxemu.wire import Status, ZoneState
from oxftl import Media, MediaGeometry, ReadOnly, SectorStatus

from .device import ZonedDevice
from .errors import ZoneCommandError

log = logging.getLogger(__name__)

READ_TRIES = 2                   # per sector, after a command failed: the device retried already
_PROTECTED = int(Status.NS_WRITE_PROTECTED)
_NO_ROOM = (int(Status.ZONE_TOO_MANY_ACTIVE), int(Status.ZONE_TOO_MANY_OPEN))
_HAS_DATA = (ZoneState.IMPLICITLY_OPEN, ZoneState.EXPLICITLY_OPEN, ZoneState.CLOSED)


def _code(status: int) -> int:
    return int(status) & ~int(Status.DNR)


class ZoneMedia(Media):
    side = "host"

    def __init__(self, dev: ZonedDevice, units: int = 2):
        info = dev.info
        self.dev = dev
        self.unit_sectors = us = info.write_unit
        zones = info.nr_zones
        units = max(1, min(units, zones, info.max_nr_open_zones or zones))
        self.zs = info.zone_sectors
        self.zcap = dev.report_zones(0, info.zone_sectors)[0].capacity
        pages = self.zcap // us
        super().__init__(MediaGeometry(units=units, blocks=zones // units, pages=pages, sectors=us,
                                       sector_nbytes=info.lblock_size, oob_nbytes=info.md_size,
                                       unit_channels=tuple(range(units))))
        self.nzones = zones
        self.written = np.zeros(zones, np.int64)     # LBAs written per zone (the write pointer)
        self.offline = np.zeros(zones, bool)
        self.retired = np.zeros(zones, bool)         # taken out of use this session (mark_bad)
        self._last = np.zeros(zones, np.int64)       # when each zone was last written (room making)
        self._clock = 0
        self.refresh()

    def refresh(self) -> None:
        """Learn every zone's write pointer and state from a report."""
        for z in self.dev.report_zones():
            self.written[z.index] = z.written if z.cond != ZoneState.EMPTY else 0
            self.offline[z.index] = z.cond == ZoneState.OFFLINE

    # ------------------------------------------------------------ addressing
    def zone_of(self, blocks) -> np.ndarray:
        """Zone index of flat blocks (block = unit * blocks + blk -> zone blk * units + unit)."""
        unit, blk = np.divmod(np.asarray(blocks, dtype=np.int64), self.geometry.blocks)
        return blk * self.geometry.units + unit

    def block_of(self, zones) -> np.ndarray:
        blk, unit = np.divmod(np.asarray(zones, dtype=np.int64), self.geometry.units)
        return unit * self.geometry.blocks + blk

    def written_pages(self, blocks) -> np.ndarray:
        """Pages written per block, as the zone write pointers say (recovery reads no more)."""
        return self.written[self.zone_of(blocks)] // self.unit_sectors

    # ------------------------------------------------------------ bad blocks
    def bad_blocks(self) -> np.ndarray:
        g = self.geometry
        z = self.zone_of(np.arange(g.total_blocks))
        return self.offline[z] | self.retired[z]

    def mark_bad(self, blocks) -> None:
        b = self._check_blocks(blocks)
        for z in self.zone_of(b).tolist():
            zone = self.dev.zone(z)
            try:
                if zone.cond == ZoneState.READ_ONLY:
                    self.dev.offline_zones(zone.start, self.zs)
                    self.offline[z] = True
                elif zone.cond in _HAS_DATA or zone.cond == ZoneState.EMPTY:
                    self.dev.finish_zones(zone.start, self.zs)
            except ZoneCommandError as e:
                self._write_protected(e)
                log.warning("zone %d: cannot take it out of use: %s", z, e)
            self.retired[z] = True

    def _write_protected(self, e: ZoneCommandError) -> None:
        if _code(e.status) == _PROTECTED:
            raise ReadOnly("the device refuses writes: its media is write-protected") from None

    # ------------------------------------------------------------ flash operations
    def erase(self, blocks) -> np.ndarray:
        b = self._check_blocks(blocks)
        ok = np.ones(b.size, dtype=bool)
        for i, z in enumerate(self.zone_of(b).tolist()):
            try:
                self.dev.reset_zones(z * self.zs, self.zs)
                self.written[z] = 0
            except ZoneCommandError as e:
                self._write_protected(e)
                ok[i] = False
        self.counters["erases"] += int(b.size)
        if (~ok).any():
            self.counters["erase_fails"] += int((~ok).sum())
            self.mark_bad(b[~ok])
        return ok

    def program(self, pages, data, oob=None) -> np.ndarray:
        p, data, oob = self._check_pages(pages, data, oob)
        g = self.geometry
        ok = np.ones(p.size, dtype=bool)
        block, pg = np.divmod(p, g.pages)
        zones = self.zone_of(block)
        pb, ob = g.page_nbytes, g.sectors * g.oob_nbytes
        order = np.lexsort((np.arange(p.size), zones))     # each zone's pages together, in the order given
        zo, po = zones[order], pg[order]
        d2, o2 = data.reshape(p.size, pb)[order], oob.reshape(p.size, ob)[order]
        runs = []                                           # runs of consecutive pages of one zone
        i = 0
        limit = max(1, self.dev.cmd_sectors // g.sectors)
        while i < p.size:
            j = i + 1
            while j < p.size and j - i < limit and zo[j] == zo[i] and po[j] == po[j - 1] + 1:
                j += 1
            runs.append((i, j))
            i = j
        if len({int(zo[a]) for a, _ in runs}) == len(runs) > 1:        # one run per zone: all at once
            sts = self.dev.write_many([(int(zo[a]) * self.zs + int(po[a]) * g.sectors, d2[a:b], o2[a:b])
                                       for a, b in runs])
        else:
            sts = [None] * len(runs)
        oko = np.ones(p.size, dtype=bool)
        for (a, b), st in zip(runs, sts):
            z = int(zo[a])
            lba = z * self.zs + int(po[a]) * g.sectors
            if st is None or st:                            # alone, or again alone after a refusal
                if st is not None:
                    self._write_protected_status(st)
                oko[a:b] = self._write(z, lba, d2[a:b].reshape(-1), o2[a:b].reshape(-1))
            else:
                self._wrote(z, lba, b - a)
            if oko[a] and int(po[b - 1]) == g.pages - 1 and self.written[z] < self.zcap:
                self._finish(z)                             # the rest of its capacity is less than a page
        ok[order] = oko
        self.counters["pages_programmed"] += int(p.size)
        self.counters["program_fails"] += int((~ok).sum())
        return ok

    def _write(self, z: int, lba: int, data: np.ndarray, oob: np.ndarray) -> bool:
        for attempt in range(2):
            try:
                self.dev.write(lba, data, oob)
                break
            except ZoneCommandError as e:
                self._write_protected(e)
                if _code(e.status) in _NO_ROOM and attempt == 0 and self._make_room(z):
                    continue
                log.debug("zone %d: write at LBA %d failed: %s", z, lba, e)
                self._relearn(z)
                return False
        self._wrote(z, lba, data.nbytes // self.geometry.page_nbytes)
        return True

    def _wrote(self, z: int, lba: int, npages: int) -> None:
        self._clock += 1
        self._last[z] = self._clock
        self.written[z] = lba + npages * self.unit_sectors - z * self.zs

    def _write_protected_status(self, status: int) -> None:
        if _code(status) == _PROTECTED:
            raise ReadOnly("the device refuses writes: its media is write-protected")

    def _relearn(self, z: int) -> None:
        zone = self.dev.zone(z)
        self.written[z] = zone.written if zone.cond != ZoneState.EMPTY else 0
        self.offline[z] = zone.cond == ZoneState.OFFLINE

    def _make_room(self, z: int) -> bool:
        """Finish the least recently written other zone holding a resource; False if none."""
        held = [x for x in self.dev.report_zones() if x.cond in _HAS_DATA and x.index != z]
        if not held:
            return False
        victim = min(held, key=lambda x: self._last[x.index]).index
        log.info("zone %d: no open or active resource left; finishing zone %d", z, victim)
        self._finish(victim)
        return True

    def _finish(self, z: int) -> None:
        try:
            self.dev.finish_zones(z * self.zs, self.zs)
        except ZoneCommandError as e:
            self._write_protected(e)
            log.warning("zone %d: finish failed: %s", z, e)

    def read(self, sectors, out=None, with_oob=True):
        s, out = self._check_sectors(sectors, out)
        g = self.geometry
        n = s.size
        status = np.zeros(n, dtype=np.uint8)
        oob = np.zeros(n * g.oob_nbytes, np.uint8) if with_oob else None
        self.counters["sectors_read"] += n
        if not n:
            return out, oob, status
        if n == 1:                                          # the 4 KiB read: plain integers
            self._read_one(int(s[0]), out, oob, status)
            return out, oob, status
        page, k = np.divmod(s, g.sectors)
        block, pg = np.divmod(page, g.pages)
        zones = self.zone_of(block)
        off = pg * g.sectors + k
        rows = out.reshape(n, g.sector_nbytes)
        orows = oob.reshape(n, g.oob_nbytes) if with_oob else None
        empty = off >= self.written[zones]
        dead = self.offline[zones] & ~empty
        status[empty] = SectorStatus.EMPTY
        status[dead] = SectorStatus.UNREADABLE
        want = np.flatnonzero(~empty & ~dead)
        if want.size:
            lbas = zones[want] * self.zs + off[want]
            buf = np.empty(want.size * g.sector_nbytes, np.uint8)
            mbuf = np.empty(want.size * g.oob_nbytes, np.uint8) if with_oob else None
            st = self.dev.read_sectors_status(lbas, buf, mbuf)
            bad = np.flatnonzero(st != 0)
            sb, ob = g.sector_nbytes, g.oob_nbytes
            for x in bad.tolist():                          # which of a failed command's sectors
                for _ in range(READ_TRIES):
                    st[x] = self.dev.read_one(int(lbas[x]), buf[x * sb:(x + 1) * sb],
                                              None if mbuf is None else mbuf[x * ob:(x + 1) * ob])
                    if not st[x]:
                        break
            good = st == 0
            rows[want[good]] = buf.reshape(-1, g.sector_nbytes)[good]
            if with_oob:
                orows[want[good]] = mbuf.reshape(-1, g.oob_nbytes)[good]
            status[want[~good]] = SectorStatus.UNREADABLE
        bad = status != SectorStatus.OK
        if bad.any():
            rows[bad] = 0
            self.counters["sectors_unreadable"] += int((status == SectorStatus.UNREADABLE).sum())
        return out, oob, status

    def _read_one(self, sector: int, out, oob, status) -> None:
        g = self.geometry
        page, k = divmod(sector, g.sectors)
        block, pg = divmod(page, g.pages)
        unit, blk = divmod(block, g.blocks)
        z = blk * g.units + unit
        off = pg * g.sectors + k
        if off >= self.written[z]:
            status[0] = SectorStatus.EMPTY
        elif self.offline[z]:
            status[0] = SectorStatus.UNREADABLE
        else:
            for _ in range(1 + READ_TRIES):
                st = self.dev.read_one(z * self.zs + off, out, oob)
                if not st:
                    return
            status[0] = SectorStatus.UNREADABLE
        out[:] = 0
        if oob is not None:
            oob[:] = 0
        if status[0] == SectorStatus.UNREADABLE:
            self.counters["sectors_unreadable"] += 1

    def finish(self, blocks) -> None:
        """The FTL will not append to these blocks again: finish their zones that are open
        or closed, so they hold no open or active resource (after recovery, say)."""
        want = set(self.zone_of(self._check_blocks(blocks)).tolist())
        for z in self.dev.report_zones():
            if z.index in want and z.cond in _HAS_DATA:
                self._finish(z.index)
