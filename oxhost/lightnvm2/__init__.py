"""A liblightnvm 2.x model of Open-Channel SSD 2.0 over the emulated bus: the geometry with
2.0 names, the chunk report, chunk-addressed reset / write / read / copy, 2.0 address
helpers, chunk notifications. Errors are the lightnvm library's (one per-LBA status
array in NvmError)."""
from oxemu.wire import ChunkState, ChunkType, CHUNK_DESC_DTYPE

from ..lightnvm.errors import AddrError, LightnvmError, NvmError
from .addr import (AddrCheck, ChunkAddr, addr_check, dev2gen, fmt, gen2dev, gen2lin, gen2lpo, gen2off, lba_check,
                   lin2gen, off2gen)
from .device import Device20, NotOcssd2
from .geo import Geo20, Lbaf

__all__ = ["AddrCheck", "AddrError", "CHUNK_DESC_DTYPE", "ChunkAddr", "ChunkState", "ChunkType", "Device20", "Geo20",
           "Lbaf", "LightnvmError", "NotOcssd2", "NvmError", "addr_check", "dev2gen", "fmt", "gen2dev", "gen2lin",
           "gen2lpo", "gen2off", "lba_check", "lin2gen", "off2gen"]
