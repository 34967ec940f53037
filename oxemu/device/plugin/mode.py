"""Plug-in FTL mode: any FTL written against the FTL API (oxftl.Ftl) runs inside the device
on DeviceMedia, and the host sees a plain NVMe namespace of 4 KiB LBAs -- flush, write,
read, dataset management -- as in AppNVM mode. The mode parses the commands, checks
ranges and answers the FTL's errors as NVMe statuses; the FTL sees only valid requests."""
import logging

import numpy as np

from oxftl import BlockDeviceError, MediaError, MediaUsageError, NoSpace, ReadOnly

from ...wire import MediaMode, NvmOpc, Status
from ..errors import CommandError
from ..identity import identify_controller, identify_namespace
from ..mode import DeviceMode
from ..prp import Transfer
from .media import DeviceMedia

log = logging.getLogger(__name__)

MAX_IO_NBYTES = 1 << 20          # MDTS: 1 MiB per read/write command
ONCS_DSM = 1 << 2
FUA = 1 << 30                    # write cdw12: force unit access
DSM_AD = 1 << 2                  # dsm cdw11: attribute deallocate
DSM_RANGE = np.dtype([("cattr", "<u4"), ("nlb", "<u4"), ("slba", "<u8")])
NSID_ALL = 0xFFFF_FFFF
WRITE_PROTECTED = Status.NS_WRITE_PROTECTED | Status.DNR


class PluginFtlMode(DeviceMode):
    """`ftl_cls` inside the device. Opening the FTL (format or recovery) happens here, at
    controller start, charged to the timing model like any other media work."""

    media_mode = MediaMode.DEVICE_FTL

    def __init__(self, core, dma, ftl_cls):
        super().__init__(core.volt.timing)
        self.core, self.dma, self.volt = core, dma, core.volt
        self.ftl_cls = ftl_cls
        self.media = DeviceMedia(core)
        self.sector_nbytes = self.media.geometry.sector_nbytes
        self.counters = dict(host_sectors_written=0, host_sectors_read=0, host_sectors_trimmed=0,
                             flushes=0, errors=0)
        self._read_only = False
        self.ftl = None
        self._open()
        self.nlbas = int(self.ftl.capacity)
        if self.nlbas <= 0:
            raise ValueError(f"FTL {ftl_cls.ftl_name()}: open() left capacity at {self.nlbas} sectors")

    def _open(self) -> None:
        self.media.start(self.timing.now_ns)
        ftl = self.ftl_cls(self.media)
        ftl.open()
        self.ftl = ftl

    # ------------------------------------------------------------ identify
    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES, oncs=ONCS_DSM, vwc=1)

    def identify_namespace(self) -> bytes:
        return identify_namespace(self.nlbas, lnvm=False)

    # ------------------------------------------------------------ I/O
    def io(self, cmd, arrival_ns):
        op = cmd.opcode
        if op not in (NvmOpc.READ, NvmOpc.WRITE, NvmOpc.FLUSH, NvmOpc.DSM):
            return Status.INVALID_OPCODE | Status.DNR, 0, arrival_ns
        if cmd.nsid != 1 and not (op == NvmOpc.FLUSH and cmd.nsid == NSID_ALL):
            return Status.INVALID_NS | Status.DNR, 0, arrival_ns
        if self.read_only and op in (NvmOpc.WRITE, NvmOpc.DSM):
            return WRITE_PROTECTED, 0, arrival_ns
        if self.ftl is None:                     # started again after a shutdown
            self._open()
        self.media.start(arrival_ns)
        try:
            self._io(cmd, op)
        except ReadOnly as e:
            self._read_only = True
            raise CommandError(WRITE_PROTECTED, f"FTL {self.ftl_cls.ftl_name()}: {e}") from None
        except NoSpace as e:
            raise CommandError(Status.CAP_EXCEEDED, str(e)) from None
        except MediaError as e:
            raise CommandError(Status.UNRECOVERED_READ, str(e)) from None
        except MediaUsageError as e:             # the FTL's own bug: say so loudly
            log.error("FTL %s misused the media: %s", self.ftl_cls.ftl_name(), e)
            raise CommandError(Status.INTERNAL, str(e)) from None
        except BlockDeviceError as e:
            raise CommandError(Status.INVALID_FIELD | Status.DNR, str(e)) from None
        return Status.SUCCESS, 0, self.media.done

    def _io(self, cmd, op) -> None:
        if op == NvmOpc.FLUSH:
            self.ftl.flush()
            self.counters["flushes"] += 1
            return
        if op == NvmOpc.DSM:
            self._dsm(cmd)
            return
        slba = cmd.cdw10 | (cmd.cdw11 << 32)
        n = (cmd.cdw12 & 0xFFFF) + 1
        sb = self.sector_nbytes
        if n * sb > MAX_IO_NBYTES:
            raise CommandError(Status.INVALID_FIELD | Status.DNR,
                               f"{n} sectors exceed the maximum transfer of {MAX_IO_NBYTES // sb}")
        if slba + n > self.nlbas:
            raise CommandError(Status.LBA_RANGE | Status.DNR, f"LBAs {slba}+{n} beyond the namespace of {self.nlbas}")
        xfer = Transfer(self.dma, cmd.prp1, cmd.prp2, n * sb)
        if op == NvmOpc.WRITE:
            self.ftl.write(slba, xfer.read())
            self.counters["host_sectors_written"] += n
            self.bytes_written += n * sb
            if cmd.cdw12 & FUA:
                self.ftl.flush()
            return
        sink = xfer.sink()
        out = sink if sink is not None else np.empty(n * sb, dtype=np.uint8)
        self.ftl.read(slba, n, out)
        if sink is None:
            xfer.write(out)
        self.counters["host_sectors_read"] += n
        self.bytes_read += n * sb

    def _dsm(self, cmd) -> None:
        if not cmd.cdw11 & DSM_AD:
            return                               # access hints only
        nr = (cmd.cdw10 & 0xFF) + 1
        raw = Transfer(self.dma, cmd.prp1, cmd.prp2, nr * DSM_RANGE.itemsize).read()
        ranges = np.frombuffer(raw.tobytes(), dtype=DSM_RANGE)
        spans = [(int(s), int(k)) for s, k in zip(ranges["slba"], ranges["nlb"])]
        for s, k in spans:
            if s + k > self.nlbas:
                raise CommandError(Status.LBA_RANGE | Status.DNR,
                                   f"deallocate of LBAs {s}+{k} beyond the namespace of {self.nlbas}")
        for s, k in spans:
            if k:
                self.ftl.trim(s, k)
                self.counters["host_sectors_trimmed"] += k

    def idle(self) -> bool:
        if self.ftl is None or self.read_only:
            return False
        self.media.start(self.timing.now_ns)
        return bool(self.ftl.background())

    # ------------------------------------------------------------ power
    def reset(self) -> None:
        if self.ftl is not None and self.volt.powered:
            self.media.start(self.timing.now_ns)
            self.ftl.flush()
        self.volt.flush()

    def shutdown(self) -> None:
        """A clean stop: the FTL closes (a new instance opens if the host comes back)."""
        if self.ftl is not None and self.volt.powered:
            self.media.start(self.timing.now_ns)
            try:
                self.ftl.close()
            except (ReadOnly, NoSpace) as e:
                log.error("FTL %s: no clean stop: %s", self.ftl_cls.ftl_name(), e)
            self.ftl = None

    # ------------------------------------------------------------ state and reports
    @property
    def read_only(self) -> bool:
        return self._read_only or bool(getattr(self.ftl, "read_only", False))

    def stats(self) -> dict:
        c = dict(self.counters)
        m = dict(self.media.counters, read_retries=self.media.read_retries)
        host = c["host_sectors_written"]
        programmed = m["pages_programmed"] * self.media.geometry.sectors
        return dict(mode="ftl", side="device", ftl=self.ftl_cls.ftl_name(), ftl_version=self.ftl_cls.version,
                    nlbas=self.nlbas, capacity_bytes=self.nlbas * self.sector_nbytes, **c, media=m,
                    media_sectors_programmed=programmed, waf=programmed / host if host else 0.0,
                    read_only=self.read_only,
                    spare_blocks=self.ftl.spare_blocks() if self.ftl is not None else None,
                    ftl_stats=self.ftl.stats() if self.ftl is not None else {})
