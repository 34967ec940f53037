"""The emulated machine: unicorn CPU, guest RAM, BAR0 MMIO window, DMA engine."""
from .dma import DmaEngine, DmaError
from .machine import BAR0_BASE, BAR0_SIZE, Machine

__all__ = ["BAR0_BASE", "BAR0_SIZE", "DmaEngine", "DmaError", "Machine"]
