"""VOLT media manager: NAND geometry, rules, OOB, bad blocks, timing, persistence."""
from .faults import Faults
from .geometry import Geometry
from .media import MediaStatus, Volt
from .store import Store, StoreError, probe_geometry
from .timing import MediaOp, NandTiming, TimingMode, TimingModel

__all__ = ["Faults", "Geometry", "MediaOp", "MediaStatus", "NandTiming", "Store", "StoreError",
           "TimingMode", "TimingModel", "Volt", "probe_geometry"]
