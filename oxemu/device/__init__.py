"""ox-ctrl: the NVMe controller, OX core dispatch and the device modes (SPEC 5-7)."""
import logging

from ..volt import Faults, Geometry, NandTiming, Store, StoreError, TimingMode, TimingModel, Volt, check_mode
from ..wire import Interface, MediaMode, NvmOpc, SMART_DATA_UNIT_NBYTES
from .admin import AdminCommands
from .appnvm import AppNvmFtl, AppNvmParams
from .controller import Controller, PowerLost
from .core import MmgrCmd, OxCore
from .identity import MAX_IO_NBYTES, identify_controller
from .lnvm import LnvmMode
from .mode import DeviceMode
from .plugin import PluginFtlMode
from .trace import Tracer
from .zns import ZnsMode, ZnsParams

log = logging.getLogger(__name__)

__all__ = ["OxCtrl", "Controller", "DeviceMode", "PowerLost", "MmgrCmd", "Unpowered"]


SPECS = {"1.2": Interface.OCSSD_1_2, "2.0": Interface.OCSSD_2_0, "zns": Interface.ZNS}


def _units(nbytes: int) -> int:
    return -(-nbytes // SMART_DATA_UNIT_NBYTES)


class Unpowered(DeviceMode):
    """Stands in for a device mode whose start a power cut interrupted: the controller
    reports CSTS.CFS and nothing is ever executed."""

    def __init__(self, timing, media_mode: MediaMode):
        super().__init__(timing)
        self.media_mode = media_mode

    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)

    def identify_namespace(self) -> bytes:
        raise PowerLost()

    def io(self, cmd, arrival_ns):
        raise PowerLost()

    def reset(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class OxCtrl:
    """The whole device behind BAR0: controller + device mode + VOLT media.

    `lnvm` > 0 selects open-channel pass-through; 0 a device-side FTL behind a plain
    namespace: AppNVM, or `ftl` (an oxftl.Ftl subclass) when given; `spec` "zns" (with
    lnvm 0) a zoned namespace shaped by `zns` (ZnsParams). The media label is
    checked before anything is written: media another mode (or another plug-in FTL)
    wrote, or an AppNVM volume of another capacity, is refused with StoreError.
    `readonly` (disk file only) opens the media read-only: mutating commands complete
    NS_WRITE_PROTECTED, and the AppNVM FTL keeps the map it recovers in memory.
    `nand` sets the timing model's NAND times; `appnvm` the AppNVM FTL's tunables.
    """

    def __init__(self, dma, *, lnvm: int, volt: int, debug: int, disk: str | None, serial: str,
                 geometry: Geometry, timing: str, faults: Faults | None, trace_stream=None,
                 appnvm_capacity: int | None = None, readonly: bool = False,
                 nand: NandTiming | None = None, appnvm: AppNvmParams | None = None, ftl=None,
                 spec: str = "1.2", zns: ZnsParams | None = None):
        interface = SPECS.get(spec)
        if interface is None:
            raise ValueError(f"unknown interface {spec!r} (1.2, 2.0 or zns)")
        if interface == Interface.ZNS and (lnvm or ftl is not None):
            raise ValueError("a zoned namespace (spec zns) needs lnvm=0 and no device FTL: the host places the data")
        if interface == Interface.OCSSD_2_0:
            raise ValueError(f"interface {spec} is not built yet")
        if ftl is not None and lnvm:
            raise ValueError("a plug-in FTL in the device needs lnvm=0 (a plain namespace)")
        if ftl is not None and readonly:
            raise ValueError("a plug-in FTL cannot open media read-only")
        faults = faults or Faults()
        self.mode: DeviceMode | None = None
        self.controller: Controller | None = None
        geo = geometry
        shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        kind = (MediaMode.ZONED if interface == Interface.ZNS else MediaMode.OPEN_CHANNEL if lnvm
                else MediaMode.DEVICE_FTL if ftl is not None else MediaMode.APPNVM)
        ftl_id = (ftl.ftl_name(), int(ftl.version)) if ftl is not None else None
        store = Store(geo, None if volt else disk, factory_bad=faults.factory_bad_table(shape),
                      readonly=readonly, mode=kind, interface=interface)
        label = store.label
        name = disk or "volatile media"
        try:
            check_mode(label, name, mode=kind, capacity=appnvm_capacity, ftl=ftl_id, interface=interface)
        except BaseException:
            store.close()
            raise
        if kind == MediaMode.APPNVM and appnvm_capacity is None and label.mode == kind and label.capacity_bytes:
            appnvm_capacity = label.capacity_bytes           # what the volume was made with
        self.volt = Volt(geo, store, TimingModel(geo.nchannels, geo.nluns, TimingMode(timing),
                                                 nand or NandTiming()), faults)
        store.counters_source = self._session_counters
        try:                               # whatever fails from here, the disk file is released
            tracer = Tracer(trace_stream) if debug else None
            core = OxCore(self.volt, tracer)
            unpowered = False
            try:
                if kind == MediaMode.OPEN_CHANNEL:
                    self.mode = LnvmMode(core, dma)
                elif kind == MediaMode.ZONED:
                    self.mode = ZnsMode(core, dma, zns)                                       # finds its zones
                elif kind == MediaMode.APPNVM:
                    self.mode = AppNvmFtl(core, dma, capacity=appnvm_capacity, params=appnvm)  # recovers its map
                else:
                    self.mode = PluginFtlMode(core, dma, ftl)                                 # opens the FTL
            except PowerLost:              # cut during the mode's own start: it never gets ready
                self.mode, unpowered = Unpowered(self.volt.timing, kind), True
            if not unpowered and not readonly and kind in (MediaMode.APPNVM, MediaMode.DEVICE_FTL):
                self._record_volume(store.label, name, ftl_id)
            admin = AdminCommands(lambda: self.controller, self.mode, self.mode.identify_controller(serial),
                                  self.volt)
            self.controller = Controller(dma, self.mode, admin, tracer, on_shutdown=self._shutdown)
            if unpowered:
                self.controller.lose_power()
        except BaseException:
            self.volt.close()
            raise

    def _record_volume(self, label, name: str, ftl_id) -> None:
        """A device-side FTL's volume in the label: its mode, capacity (and FTL), once."""
        exported = self.mode.nlbas * self.mode.sector_nbytes
        if label.mode != MediaMode.BLANK and label.capacity_bytes:
            if label.capacity_bytes != exported and ftl_id is not None:
                raise StoreError(f"{name}: FTL {ftl_id[0]!r} exports {exported:,} bytes, the media label "
                                 f"records {label.capacity_bytes:,}: its capacity must not change between opens")
            return
        fields = dict(mode=self.mode.media_mode, capacity_bytes=exported)
        if ftl_id is not None:
            fields.update(ftl_name=ftl_id[0].encode(), ftl_version=ftl_id[1])
        self.volt.update_label(**fields)

    def _shutdown(self) -> None:
        """CC.SHN: the mode's own shutdown, then the media records a clean stop."""
        self.mode.shutdown()
        self.volt.shutdown()

    def _session_counters(self) -> dict:
        """This power-on's share of the label's lifetime counters."""
        out = dict(media_errors=self.volt.counters["read_errors"])
        mode, ctrl = self.mode, self.controller           # None while the mode starts
        if mode is not None:
            out.update(data_units_read=_units(mode.bytes_read), data_units_written=_units(mode.bytes_written))
        if ctrl is not None:
            opc = ctrl.opcodes
            out.update(host_read_cmds=opc[NvmOpc.READ] + opc[NvmOpc.PH_READ],
                       host_write_cmds=opc[NvmOpc.WRITE] + opc[NvmOpc.PH_WRITE] + opc[NvmOpc.ZONE_APPEND])
        return out

    def close(self) -> None:
        self.volt.close()
