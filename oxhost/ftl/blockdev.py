"""FtlBlockDevice: any FTL written against the FTL API (oxftl.Ftl), served in the host as a
block device over the media it is given -- open-channel media (HostMedia on 1.2,
ChunkMedia on 2.0), where pblk would sit, or zones (oxhost.zns.ZoneMedia). The FTL sees only valid requests; this class
checks ranges, counts what the host asked, keeps the FTL's name, version and capacity in
the media label (OX vendor admin 0xC1, which both device modes take), and answers errors
in the block device's classes."""
import ctypes
import logging

import numpy as np

from oxemu.wire import LABEL_MAGIC, MediaLabel, TargetKind

from ..blockdev import BlockDevice, BlockDeviceError
from ..driver import DriverError

log = logging.getLogger(__name__)


class FtlTargetError(BlockDeviceError):
    """The media holds something else than this FTL's volume; nothing was written."""


def label_ftl(label: MediaLabel) -> tuple[str, int]:
    return bytes(label.ftl_name).rstrip(b"\0").decode(errors="replace"), int(label.ftl_version)


class FtlBlockDevice(BlockDevice):
    """`ftl_cls` (an oxftl.Ftl subclass) on `media` (an oxftl.Media in the host). `driver` is
    the NVMe driver the media label is read and recorded through; `luns` the target's LUN
    range (lun_begin, lun_end) on open-channel media, None on zones (which span the device)."""

    def __init__(self, media, ftl_cls, driver, luns: tuple[int, int] | None):
        self.media = media
        self.driver = driver
        self.lun_begin, self.lun_end = luns if luns is not None else (0, 0)
        self.luns = luns
        self.name, self.version = ftl_cls.ftl_name(), int(ftl_cls.version)
        label = self._label()
        self._check_label(label)
        self.ftl = ftl_cls(self.media)
        self.ftl.open()
        cap = int(self.ftl.capacity)
        if cap <= 0:
            raise BlockDeviceError(f"FTL {self.name}: open() left capacity at {cap} sectors")
        if label is not None and label.target == TargetKind.FTL and label.capacity_bytes \
                and label.capacity_bytes != cap * self.sector_nbytes:
            raise FtlTargetError(f"FTL {self.name} exports {cap * self.sector_nbytes:,} bytes, but the media "
                                 f"label records {label.capacity_bytes:,}: its capacity must not change "
                                 f"between opens")
        self.nsectors = cap
        self.counters = dict(host_sectors_written=0, host_sectors_read=0, host_sectors_trimmed=0,
                             flushes=0)
        self._closed = False
        self._record(label)

    # ------------------------------------------------------------ media label
    def _label(self) -> MediaLabel | None:
        try:
            label = self.driver.media_label()
        except DriverError as e:
            log.debug("no media label: %s", e)
            return None
        return label if label.magic == LABEL_MAGIC else None

    def _check_label(self, label) -> None:
        if label is None or label.target == TargetKind.NONE:
            return
        if label.target != TargetKind.FTL:
            raise FtlTargetError(f"the media holds a {TargetKind(label.target).name.lower()} volume, not the "
                                 f"FTL {self.name}'s")
        name, version = label_ftl(label)
        if self.luns is not None and (int(label.lun_begin), int(label.lun_end)) != (self.lun_begin, self.lun_end):
            raise FtlTargetError(f"the media holds FTL {name}'s volume on LUNs {label.lun_begin}-"
                                 f"{label.lun_end}, not {self.lun_begin}-{self.lun_end}")
        if (name, version) != (self.name, self.version):
            raise FtlTargetError(f"the media holds FTL {name} version {version}'s volume, not {self.name} "
                                 f"version {self.version}'s")

    def _record(self, label) -> None:
        if label is None or label.target == TargetKind.FTL:
            return
        new = MediaLabel.from_buffer_copy(bytes(label))
        new.target = TargetKind.FTL
        new.lun_begin, new.lun_end = self.lun_begin, self.lun_end
        new.capacity_bytes = self.size
        ctypes.memset(ctypes.addressof(new) + MediaLabel.ftl_name.offset, 0, MediaLabel.ftl_name.size)
        ctypes.memmove(ctypes.addressof(new) + MediaLabel.ftl_name.offset, self.name.encode(), len(self.name))
        new.ftl_version = self.version
        try:
            self.driver.set_target(new)
        except DriverError as e:
            log.warning("could not record FTL %s in the media label: %s", self.name, e)

    # ------------------------------------------------------------ BlockDevice
    @property
    def size(self) -> int:
        return self.nsectors * self.sector_nbytes

    def _check(self, lba: int, count: int) -> None:
        if self._closed:
            raise BlockDeviceError("the device is closed")
        if lba < 0 or count < 1 or lba + count > self.nsectors:
            raise BlockDeviceError(f"sectors {lba}+{count} outside the device of {self.nsectors}")

    def read_sectors(self, lba: int, count: int) -> np.ndarray:
        return self.read_into(lba, count, np.empty(count * self.sector_nbytes, dtype=np.uint8))

    def read_into(self, lba: int, count: int, out: np.ndarray) -> np.ndarray:
        self._check(lba, count)
        view = out.reshape(-1).view(np.uint8)[:count * self.sector_nbytes]
        self.ftl.read(lba, count, view)
        self.counters["host_sectors_read"] += count
        return view

    def write_sectors(self, lba: int, data) -> None:
        data = np.asarray(data).reshape(-1).view(np.uint8)
        if data.nbytes % self.sector_nbytes:
            raise BlockDeviceError(f"write of {data.nbytes} bytes is not whole sectors")
        count = data.nbytes // self.sector_nbytes
        self._check(lba, count)
        self.ftl.write(lba, data)
        self.counters["host_sectors_written"] += count

    def discard_sectors(self, lba: int, count: int) -> None:
        self._check(lba, count)
        self.ftl.trim(lba, count)
        self.counters["host_sectors_trimmed"] += count

    def flush(self) -> None:
        if self._closed:
            return
        self.ftl.flush()
        self.counters["flushes"] += 1

    def background(self) -> bool:
        return False if self._closed else bool(self.ftl.background())

    @property
    def read_only(self) -> bool:
        return bool(self.ftl.read_only)

    def buf_alloc(self, nbytes: int) -> np.ndarray:
        return self.media.buf_alloc(nbytes)

    def stats(self) -> dict:
        c = self.counters
        m = self.media.counters
        host = c["host_sectors_written"]
        programmed = m["pages_programmed"] * self.media.geometry.sectors + m.get("pad_sectors", 0)
        return dict(mode="ftl", side="host", ftl=self.name, ftl_version=self.version,
                    capacity_bytes=self.size, **c, media=dict(m), read_only=self.read_only,
                    spare_blocks=self.ftl.spare_blocks(),
                    media_sectors_programmed=programmed,
                    write_amplification=round(programmed / host, 4) if host else 0.0,
                    ftl_stats=self.ftl.stats())

    def ftl_params(self) -> dict:
        """The FTL, where it runs and the media it was given; its own choices (GC, buffers)
        are in its stats() if it reports them. Valid sectors per block: the FTL keeps its
        map to itself (block_valid_sectors() is None). lun_range is None on zones, which span
        the device."""
        g = self.media.geometry
        return dict(capacity_bytes=self.size, ftl=self.name, ftl_version=self.version, side="host",
                    lun_range=list(self.luns) if self.luns is not None else None, units=g.units,
                    blocks_per_unit=g.blocks, pages_per_block=g.pages, sectors_per_page=g.sectors)

    def close(self) -> None:
        if self._closed:
            return
        self.ftl.close()
        self._closed = True
