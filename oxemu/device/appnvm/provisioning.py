"""Over-provisioning of the AppNVM FTL: the exported capacity and the blocks kept back
for GC and metadata (SPEC 6).

The default capacity follows pblk's rule (Linux 4.12-4.15): floor(blocks x 80 / 100) x
sectors per block (`exported_sectors`, 20 % over-provisioning by default), so both modes
export the same 3,435,134,976 bytes on the default geometry and compare fairly.
Everything else the device keeps for itself.

Read-only threshold: the device accepts writes while its good blocks could still be
formatted to the exported capacity, i.e. while they hold the capacity's blocks plus the
reserves below (GC and metadata, two spare blocks, one checkpoint's span) -- the same
bound `plan` puts on a new device. Once grown bad blocks take it under `min_good`, the
capacity is no longer guaranteed and the device goes read-only (ftl.py).
"""
import math
from dataclasses import dataclass
from fractions import Fraction

from .layout import BLOCK_ENTRY, CKPT_HEADER_NBYTES
from .mapping import Addr
from .params import AppNvmParams

MAX_IO_NBYTES = 1 << 20          # MDTS: 1 MiB per read/write command
WRITE_BUFFER_UNITS_PER_LUN = 2   # modeled buffer depth: two units in flight per LUN
OVER_PROVISION = 0.2             # pblk's OVER_PROVISION_PCT of kernels 4.12-4.15


def exported_sectors(geo, op: float = OVER_PROVISION) -> int:
    """AppNVM's exported 4 KiB sectors on a geometry (an oxemu Geometry) when the host
    names no capacity: floor(blocks x (1 - op)) x sectors per block, pblk's rule over
    every LUN, so that both modes export the same bytes at the same op (3,435,134,976 on
    the default geometry). `op` is taken as the decimal number it prints as."""
    if not 0 < op < 1:
        raise ValueError(f"over-provisioning must be in (0, 1), got {op!r}")
    blocks = geo.nchannels * geo.nluns * geo.nblocks
    return math.floor(blocks * (1 - Fraction(repr(float(op))))) * geo.npages * geo.nplanes * geo.nsectors


def checkpoint_nbytes(addr: Addr, nlbas: int) -> int:
    return CKPT_HEADER_NBYTES + 4 * nlbas + BLOCK_ENTRY.itemsize * addr.total_blocks


@dataclass(frozen=True)
class Provision:
    nlbas: int              # exported 4 KiB sectors
    ckpt_units: int         # units one checkpoint takes
    reserve: int            # free blocks user writes may not take (GC + metadata)
    gc_floor: int           # the metadata's share of free blocks (at most; GC leaves what it needs now)
    gc_low: int             # GC runs while fewer blocks than this are free
    ckpt_every: int         # data units between periodic checkpoints
    meta_units_max: int     # trim-journal units that force a checkpoint
    wb_units: int           # modeled write-buffer depth in units
    max_sectors: int        # per command (MDTS)
    min_good: int           # good blocks below which the device goes read-only


def plan(addr: Addr, nlbas: int | None = None, params: AppNvmParams | None = None) -> Provision:
    """Reserves for a geometry and capacity; ValueError if the capacity cannot fit.

    `params` sets the GC thresholds (reserve = gc_floor + gc_foreground; gc_low = reserve
    + max(1, floor(gc_background x LUNs))), the buffer depth and the checkpoint interval;
    the defaults give the built-in values."""
    params = params or AppNvmParams()
    npages = addr.npages
    if nlbas is None:
        nlbas = exported_sectors(addr.geo)
    ckpt_units = math.ceil(checkpoint_nbytes(addr, nlbas) / addr.unit_nbytes)
    ckpt_span = math.ceil((ckpt_units - 1) / npages) + 1        # blocks one checkpoint can touch
    meta_units_max = max(1, npages // 2)
    gc_floor = ckpt_span + 1                                    # next checkpoint + trim journal
    reserve = gc_floor + params.gc_foreground                   # + blocks for GC to move into
    margin = math.floor(Fraction(repr(float(params.gc_background))) * addr.total_luns)
    gc_low = reserve + max(1, margin)                           # default: LUNs // 8
    overhead = reserve + 2 + ckpt_span
    max_nlbas = (addr.total_blocks - overhead) * addr.block_secs
    if nlbas < 1 or nlbas > max_nlbas:
        raise ValueError(f"AppNVM capacity of {nlbas} sectors is outside 1..{max_nlbas} "
                         f"for a device of {addr.total_blocks} blocks")
    return Provision(
        nlbas=nlbas, ckpt_units=ckpt_units, reserve=reserve, gc_floor=gc_floor, gc_low=gc_low,
        ckpt_every=(params.checkpoint_interval_blocks or max(4, addr.total_blocks // 8)) * npages,
        meta_units_max=meta_units_max,
        wb_units=params.write_buffer_units_per_lun * addr.total_luns,
        max_sectors=MAX_IO_NBYTES // addr.sector_nbytes,
        min_good=-(-nlbas // addr.block_secs) + overhead)
