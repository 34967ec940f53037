"""ox-ctrl: the NVMe controller, OX core dispatch and the device modes (SPEC 5-7)."""
import logging

from ..volt import Faults, Geometry, Store, TimingMode, TimingModel, Volt
from .admin import AdminCommands
from .appnvm import AppNvmFtl
from .controller import Controller, PowerLost
from .core import MmgrCmd, OxCore
from .identity import MAX_IO_NBYTES, identify_controller
from .lnvm import LnvmFtl
from .trace import Tracer

log = logging.getLogger(__name__)

__all__ = ["OxCtrl", "Controller", "PowerLost", "MmgrCmd"]


class OxCtrl:
    """The whole device behind BAR0: controller + FTL mode + VOLT media.

    `lnvm` > 0 selects open-channel pass-through; 0 the device-side AppNVM FTL.
    """

    def __init__(self, dma, *, lnvm: int, volt: int, debug: int, disk: str | None, serial: str,
                 geometry: Geometry, timing: str, faults: Faults | None, trace_stream=None,
                 appnvm_capacity: int | None = None):
        faults = faults or Faults()
        geo = geometry
        shape = (geo.nchannels, geo.nluns, geo.nblocks, geo.nplanes)
        store = Store(geo, None if volt else disk, factory_bad=faults.factory_bad_table(shape))
        self.volt = Volt(geo, store, TimingModel(geo.nchannels, geo.nluns, TimingMode(timing)), faults)
        try:                               # whatever fails from here, the disk file is released
            tracer = Tracer(trace_stream) if debug else None
            core = OxCore(self.volt, tracer)
            if not lnvm:
                self.ops = AppNvmFtl(core, dma, capacity=appnvm_capacity)   # recovers its map
                id_ctrl, on_power = self.ops.identify_controller(serial), self.ops.shutdown
            else:
                self.ops = LnvmFtl(core, dma)
                id_ctrl = identify_controller(serial, nn=1, max_nbytes=MAX_IO_NBYTES)
                on_power = self.volt.flush
            admin = AdminCommands(lambda: self.controller, self.ops, id_ctrl)
            self.controller = Controller(dma, self.ops, admin, tracer,
                                         on_reset=on_power, on_shutdown=on_power)
        except BaseException:
            self.volt.close()
            raise

    def close(self) -> None:
        self.volt.close()
