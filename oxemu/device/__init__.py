"""ox-ctrl: the NVMe controller, OX core dispatch and the device modes (SPEC 5-7)."""
import logging

from ..volt import Faults, Geometry, NandTiming, Store, TimingMode, TimingModel, Volt, check_mode
from ..wire import MediaMode, NvmOpc, SMART_DATA_UNIT_NBYTES
from .admin import AdminCommands
from .appnvm import AppNvmFtl, AppNvmParams
from .controller import Controller, PowerLost
from .core import MmgrCmd, OxCore
from .identity import MAX_IO_NBYTES, identify_controller
from .lnvm import LnvmFtl
from .trace import Tracer

log = logging.getLogger(__name__)

__all__ = ["OxCtrl", "Controller", "PowerLost", "MmgrCmd"]


def _units(nbytes: int) -> int:
    return -(-nbytes // SMART_DATA_UNIT_NBYTES)


class _Unpowered:
    """Stands in for a device mode whose start a power cut interrupted: the controller
    reports CSTS.CFS and nothing is ever executed."""
    lnvm = False
    bytes_read = bytes_written = 0

    def __init__(self, timing):
        self.timing = timing

    def identify_controller(self, serial: str) -> bytes:
        return identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)

    def admin_extra(self, opcode):
        return None

    def identify_namespace(self) -> bytes:
        raise PowerLost()

    def io(self, cmd, arrival_ns):
        raise PowerLost()

    def shutdown(self) -> None:
        pass


class OxCtrl:
    """The whole device behind BAR0: controller + FTL mode + VOLT media.

    `lnvm` > 0 selects open-channel pass-through; 0 the device-side AppNVM FTL. The media
    label is checked before anything is written: media another mode wrote, or an AppNVM
    volume of another capacity, is refused with StoreError. `readonly` (disk file only)
    opens the media read-only: mutating commands complete NS_WRITE_PROTECTED, and the
    AppNVM FTL keeps the map it recovers in memory.
    `nand` sets the timing model's NAND times; `appnvm` the AppNVM FTL's tunables.
    """

    def __init__(self, dma, *, lnvm: int, volt: int, debug: int, disk: str | None, serial: str,
                 geometry: Geometry, timing: str, faults: Faults | None, trace_stream=None,
                 appnvm_capacity: int | None = None, readonly: bool = False,
                 nand: NandTiming | None = None, appnvm: AppNvmParams | None = None):
        faults = faults or Faults()
        geo = geometry
        shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        mode = MediaMode.OPEN_CHANNEL if lnvm else MediaMode.APPNVM
        store = Store(geo, None if volt else disk, factory_bad=faults.factory_bad_table(shape),
                      readonly=readonly, mode=mode)
        label = store.label
        try:
            check_mode(label, disk or "volatile media", lnvm=bool(lnvm), capacity=appnvm_capacity)
        except BaseException:
            store.close()
            raise
        if not lnvm and appnvm_capacity is None and label.mode == MediaMode.APPNVM and label.capacity_bytes:
            appnvm_capacity = label.capacity_bytes           # what the volume was made with
        self.volt = Volt(geo, store, TimingModel(geo.nchannels, geo.nluns, TimingMode(timing),
                                                 nand or NandTiming()), faults)
        store.counters_source = self._session_counters
        try:                               # whatever fails from here, the disk file is released
            tracer = Tracer(trace_stream) if debug else None
            core = OxCore(self.volt, tracer)
            unpowered = False
            if not lnvm:
                try:
                    self.ops = AppNvmFtl(core, dma, capacity=appnvm_capacity, params=appnvm)  # recovers its map
                except PowerLost:          # cut during the FTL's own start: it never gets ready
                    self.ops, unpowered = _Unpowered(self.volt.timing), True
                id_ctrl, on_reset = self.ops.identify_controller(serial), self.ops.shutdown
                if (not unpowered and not readonly
                        and (store.label.mode == MediaMode.BLANK or not store.label.capacity_bytes)):
                    exported = self.ops.nlbas * self.ops.sector_nbytes
                    self.volt.update_label(mode=MediaMode.APPNVM, capacity_bytes=exported)
            else:
                self.ops = LnvmFtl(core, dma)
                id_ctrl = identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)
                on_reset = self.volt.flush
            admin = AdminCommands(lambda: self.controller, self.ops, id_ctrl, self.volt)
            self.controller = Controller(dma, self.ops, admin, tracer,
                                         on_reset=on_reset, on_shutdown=self._shutdown)
            if unpowered:
                self.controller.lose_power()
        except BaseException:
            self.volt.close()
            raise

    def _shutdown(self) -> None:
        """CC.SHN: the mode's own shutdown, then the media records a clean stop."""
        if not getattr(self.ops, "lnvm", False):
            self.ops.shutdown()
        self.volt.shutdown()

    def _session_counters(self) -> dict:
        """This power-on's share of the label's lifetime counters."""
        out = dict(media_errors=self.volt.counters["read_errors"])
        ops = getattr(self, "ops", None)
        if ops is not None:
            out.update(data_units_read=_units(ops.bytes_read), data_units_written=_units(ops.bytes_written))
        ctrl = getattr(self, "controller", None)
        if ctrl is not None:
            opc = ctrl.opcodes
            out.update(host_read_cmds=opc[NvmOpc.READ] + opc[NvmOpc.PH_READ],
                       host_write_cmds=opc[NvmOpc.WRITE] + opc[NvmOpc.PH_WRITE])
        return out

    def close(self) -> None:
        self.volt.close()
