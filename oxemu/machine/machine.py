"""The emulated machine: CPU, guest RAM, BAR0 and the ox-ctrl device behind it (SPEC 4)."""
import logging

import numpy as np

from ..volt import Faults, Geometry, NandTiming, TimingMode
from ..wire import PCI_DEVICE_ID, PCI_VENDOR_ID, BlockState, PciCfg
from .cpu import RESERVED_END, Cpu
from .dma import DmaEngine
from .ram import GuestRam

log = logging.getLogger(__name__)

BAR0_BASE = 0xFEB0_0000
BAR0_SIZE = 0x4000          # 16 KiB: registers + doorbells for 1024 queue pairs


class Machine:
    """One emulated computer with one OX device; a context manager.

    Parameters mirror QEMU's `-device ox-ctrl,lnvm=,volt=,debug=,serial=`; `disk` is the
    media file used when volt=0 (default ./ox.disk). `appnvm_capacity` (bytes) sets the
    exported size in AppNVM mode (lnvm=0); None means what the media's label records, or
    pblk's rule on blank media. `readonly` opens an existing disk file read-only, under a
    shared lock, in either mode: erases, writes, deallocates and bad block table changes
    complete NS_WRITE_PROTECTED and the file is never written (in AppNVM mode the FTL
    rebuilds its map in memory and writes no checkpoint). Media labelled by the other
    mode, or an AppNVM volume of another capacity, is refused with StoreError before
    anything is written. `nand` (oxemu.NandTiming) sets the timing model's NAND times and
    `appnvm` (oxemu.AppNvmParams) the AppNVM FTL's victim policy, GC thresholds, buffer
    depth, wear levelling and checkpoint interval; None means the built-in values. `ftl`
    (an oxftl.Ftl subclass, lnvm=0) runs that FTL inside the device instead of AppNVM,
    behind the same plain namespace; the media label records its name and version.
    `spec` is the host interface the device speaks: "1.2" (OCSSD 1.2 in open-channel
    mode, plain NVMe otherwise), "2.0" (OCSSD 2.0 chunks) or "zns" (zoned namespace);
    the media label records it and media written through another is refused; `zns`
    (oxemu.ZnsParams) shapes the zones of spec "zns" (lnvm=0). The
    host stack sees only `ram`, the register accessors (executed by the guest CPU) and the
    PCI ids; the lab-instrument accessors (`virtual_ns`, `issue_at`, `stats`,
    `erase_counts`, `grown_bad_blocks`, `block_valid_sectors`) are for benchmarks, not for the host stack.
    """

    def __init__(self, lnvm: int = 1, volt: int = 1, debug: int = 0, disk: str | None = None,
                 serial: str = "deadbeef", ram_mib: int = 256, *, geometry: Geometry | None = None,
                 timing: str = "off", faults: Faults | None = None, trace_stream=None,
                 appnvm_capacity: int | None = None, readonly: bool = False,
                 nand: NandTiming | None = None, appnvm=None, ftl=None, spec: str = "1.2", zns=None):
        if ram_mib < 1:
            raise ValueError("ram_mib must be at least 1")
        if readonly and volt:
            raise ValueError("readonly=True needs a disk file (volt=0)")
        TimingMode(timing)                   # refuse a bad mode before the disk file is locked
        from ..device import OxCtrl          # the device is built by the machine, not the host
        self.geometry = geometry or Geometry()
        self._ram = GuestRam(ram_mib << 20)
        self.ram = self._ram.array
        self.ram_free_base = RESERVED_END
        self.cpu = Cpu(self._ram)
        self.dma = DmaEngine(self.ram)
        if not volt and disk is None:
            disk = "ox.disk"
        try:
            self.device = OxCtrl(self.dma, lnvm=lnvm, volt=volt, debug=debug, disk=disk,
                                 serial=serial, geometry=self.geometry, timing=timing,
                                 faults=faults, trace_stream=trace_stream,
                                 appnvm_capacity=appnvm_capacity, readonly=readonly,
                                 nand=nand, appnvm=appnvm, ftl=ftl, spec=spec, zns=zns)
        except BaseException:
            self.cpu.close()
            self._ram.close()
            raise
        ctrl = self.device.controller
        self.cpu.map_mmio(BAR0_BASE, BAR0_SIZE, ctrl.mmio_read, ctrl.mmio_write)
        self._timing = self.device.volt.timing      # the lab instruments read these per request
        self._counters = ctrl.counters
        self.bar0 = BAR0_BASE
        self._closed = False

    # -- what the host sees ------------------------------------------------------
    def config_read(self, offset: int) -> int:
        """PCI configuration space (16-bit reads of the ids, 24-bit class code)."""
        if offset == PciCfg.VENDOR_ID:
            return PCI_VENDOR_ID
        if offset == PciCfg.DEVICE_ID:
            return PCI_DEVICE_ID
        if offset == PciCfg.CLASS_CODE:
            return 0x010802
        return 0

    def reg_read32(self, offset: int) -> int:
        return self.cpu.load32(BAR0_BASE + offset)

    def reg_write32(self, offset: int, value: int) -> None:
        self.cpu.store32(BAR0_BASE + offset, value)

    def reg_write32_many(self, pairs) -> None:
        """Several register writes in one CPU run, e.g. an SQ tail and a CQ head."""
        base = BAR0_BASE
        self.cpu.store32_many([(base + off, val) for off, val in pairs])

    def set_irq_handler(self, handler) -> None:
        """handler(vector) runs when the device posts a completion on an IRQ-enabled CQ."""
        self.device.controller.irq = handler

    @property
    def virtual_ns(self) -> int:
        """The device's modeled clock (SPEC 8); 0 forever when timing is off."""
        return self._timing.now_ns

    def issue_at(self, t_ns: int) -> None:
        """Lab instrument: the commands the host submits next arrive at virtual time
        `t_ns`, even when that is earlier than the last completion (a benchmark running
        several requests at once issues them in time order). The per-LUN busy-until
        stamps and the channels' bookings stay, so resources still busy delay them; after
        the commands complete, `virtual_ns` is their last completion (or `t_ns`)."""
        self._timing.set_arrival(t_ns)

    @property
    def io_commands(self) -> int:
        """Lab instrument: I/O commands the controller has executed (cheap to read)."""
        return self._counters["io_cmds"]

    def erase_counts(self) -> np.ndarray:
        """Lab instrument: erase count per (global LUN, block), the largest of the block's
        planes: an int array of shape (channels x LUNs, blocks)."""
        geo = self.geometry
        ec = self.device.volt.store.erase_count
        return np.asarray(ec).reshape(geo.total_luns, geo.nblocks, -1).max(axis=2).astype(np.int64)

    def grown_bad_blocks(self) -> np.ndarray:
        """Lab instrument: per (global LUN, block), whether a plane of it went bad in use
        (grown bad in the bad block table): a bool array of shape (channels x LUNs, blocks)."""
        geo = self.geometry
        bbt = np.asarray(self.device.volt.store.bbt)
        return (bbt == BlockState.GRWN_BAD).reshape(geo.total_luns, geo.nblocks, -1).any(axis=2)

    def block_valid_sectors(self) -> np.ndarray | None:
        """Lab instrument: valid sectors per (global LUN, block) as the device-side FTL
        counts them (AppNVM mode); None in open-channel mode, where the host FTL knows."""
        return self.device.mode.block_valid_sectors()

    def stats(self) -> dict:
        """The lab instrument's view, for benchmarks: virtual time, media and bus counters
        and the CPU time the device spent. A host driver on real hardware has none of it."""
        dev = self.device
        ctrl = dev.controller
        volt = dev.volt
        out = dict(ctrl.counters)
        out.update(virtual_ns=volt.timing.now_ns, device_cpu_s=ctrl.busy_ns / 1e9,
                   media_ops=volt.ops, media_powered=volt.powered,
                   dma_bytes_to_device=self.dma.bytes_read, dma_bytes_to_host=self.dma.bytes_written,
                   media=dict(volt.counters),
                   media_bytes_programmed=volt.counters["programs"] * self.geometry.page_nbytes,
                   media_bytes_read=volt.counters["reads"] * self.geometry.page_nbytes)
        ftl = dev.mode.stats()
        if ftl:
            out["ftl"] = ftl
        return out

    # -- lifecycle ----------------------------------------------------------------
    def close(self) -> None:
        """Power off: the controller shuts down and the media file is flushed."""
        if self._closed:
            return
        self._closed = True
        try:
            self.device.close()
        finally:
            self.cpu.close()
            self._ram.close()
            self.ram = None
            self.dma = None

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
