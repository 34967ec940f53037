"""A liblightnvm 1.2 model over the emulated bus: the names users' scripts rely on."""
from oxemu.wire import BlockState, PMode

from .addr import (Addr, AddrCheck, addr_check, dev2gen, fmt, gen2dev, gen2lba, gen2off, lba2gen,
                   off2gen, ppa_check)
from .bbt import BbTable
from .buf import buf_diff, buf_fill
from .device import Device
from .errors import AddrError, LightnvmError, NotOpenChannel, NvmError, worst_status
from .geo import Geo, Ppaf
from .vblk import VBlk

__all__ = ["Addr", "AddrCheck", "AddrError", "ppa_check", "worst_status", "BbTable", "BlockState", "Device", "Geo", "LightnvmError",
           "NotOpenChannel", "NvmError", "PMode", "Ppaf", "VBlk", "addr_check", "buf_diff",
           "buf_fill", "dev2gen", "fmt", "gen2dev", "gen2lba", "gen2off", "lba2gen", "off2gen"]
