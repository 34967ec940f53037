"""VOLT media manager: NAND geometry, rules, OOB, bad blocks, timing, persistence."""
from .errors import StoreError
from .faults import Faults
from .format import format_media
from .geometry import Geometry
from .label import check_mode, describe
from .media import MediaStatus, Volt
from .store import PageState, StopState, Store, probe_geometry, probe_label
from .timing import MediaOp, NandTiming, TimingMode, TimingModel

__all__ = ["Faults", "Geometry", "MediaOp", "MediaStatus", "NandTiming", "PageState", "StopState",
           "Store", "StoreError", "TimingMode", "TimingModel", "Volt", "check_mode", "describe",
           "format_media", "probe_geometry", "probe_label"]
