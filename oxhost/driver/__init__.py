"""User-space NVMe driver over the emulated bus."""
from .dmamem import DmaBuffer, DmaPool
from .driver import Completion, NvmeDriver, QueuePair
from .errors import CommandTimeout, ControllerFatal, DriverError, OutOfDmaMemory

__all__ = ["CommandTimeout", "Completion", "ControllerFatal", "DmaBuffer", "DmaPool", "DriverError",
           "NvmeDriver", "OutOfDmaMemory", "QueuePair"]
