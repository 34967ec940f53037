"""pblk's tunables as one value the stack hands the target (oxhost.config's [ftl] and [pblk]
sections): capacity from over-provisioning, the GC victim policy, the rate limiter's
thresholds and the write buffer's size. The defaults are Linux 4.12 pblk's constants.

Also pblk's sizing rules, written once for the target and for the configuration that
checks a setting before any target exists: the exported capacity (`exported_sectors`)
and the spare space below which the target turns read-only (`spare_need`,
`spare_at_start`). The rate limiter's thresholds are rl.thresholds."""
import math
from dataclasses import dataclass
from fractions import Fraction

from .metadata import MetaSizes

GC_POLICIES = ("greedy", "cost-benefit", "fifo", "random", "d-choice")
OVER_PROVISION_PCT = 20       # pblk_set_provision, kernels 4.12-4.15


def exported_sectors(nchunks: int, sec_per_chunk: int, op: float = OVER_PROVISION_PCT / 100) -> int:
    """pblk's exported capacity (pblk_set_provision, kernels 4.12-4.15) over `nchunks`
    chunks (a chunk: one block on every plane of one LUN): floor(chunks x (1 - op)) x
    sectors per chunk, op = 0.2 keeping 80 % -- 3,435,134,976 bytes on the default
    geometry. `op` is taken as the decimal number it prints as, so 0.3 means 3/10 exactly
    and no float rounding moves a chunk."""
    if not 0 < op < 1:
        raise ValueError(f"over-provisioning must be in (0, 1), got {op!r}")
    return math.floor(nchunks * (1 - Fraction(repr(float(op))))) * sec_per_chunk


def spare_need(reserve_secs: int) -> int:
    """Spare data sectors (beyond the exported capacity) the target needs to stay
    writable: GC's reserve and half as much again, so GC keeps freeing lines at a bounded
    cost. Below it the target turns read-only (Pblk._update_read_only)."""
    return reserve_secs + reserve_secs // 2


def spare_at_start(geo, capacity_sectors: int, rsv_lines: int, nluns: int | None = None) -> tuple[int, int, int]:
    """(spare, need, data sectors per line) of a new target over `nluns` LUNs (default:
    all) of a geometry with no bad block, exporting `capacity_sectors`, with `rsv_lines`
    lines held for GC: its lines' data sectors (smeta and emeta take their units of each)
    beyond the capacity, and `spare_need` of its reserve. data <= 0: no room for data
    beside the metadata."""
    nluns = geo.nchannels * geo.nluns if nluns is None else nluns
    unit = geo.nplanes * geo.nsectors
    per_line = geo.npages * unit * nluns
    sz = MetaSizes(nluns, geo.nblocks, unit, per_line, geo.sector_nbytes)
    data = per_line - (sz.smeta_units + sz.emeta_units) * unit
    return geo.nblocks * data - capacity_sectors, spare_need(data * rsv_lines), data


@dataclass(frozen=True)
class PblkParams:
    """op: fraction of the target's chunks kept back (OVER_PROVISION_PCT = 20): exported
    sectors = floor(chunks x (1 - op)) x sectors per chunk (`exported_sectors`); capacity_sectors, when not 0,
    is the exported size itself (a volume reopened with the size its label records).
    gc_policy / gc_d / gc_seed: the victim policy (lines.py terms: greedy = fewest valid
    sectors, cost-benefit, fifo, random, d-choice). gc_foreground: lines held for GC alone
    (PBLK_GC_RSV_LINE = 1). gc_background: the rate limiter's high threshold as a fraction
    of the line space (1 / PBLK_USER_HIGH_THRS = 0.125); rl_low_div: its low threshold is
    1 / rl_low_div of it (PBLK_USER_LOW_THRS = 10). write_buffer_entries: the ring write
    buffer's 4 KiB entries (NR_ENTRIES = 2048), rounded down to whole write units."""

    op: float = 0.2
    capacity_sectors: int = 0
    gc_policy: str = "greedy"
    gc_d: int = 4
    gc_seed: int = 0
    gc_background: float = 0.125
    gc_foreground: int = 1
    rl_low_div: int = 10
    write_buffer_entries: int = 2048

    def __post_init__(self):
        if not 0 < self.op < 1:
            raise ValueError(f"pblk over-provisioning must be in (0, 1), got {self.op!r}")
        if self.gc_policy not in GC_POLICIES:
            raise ValueError(f"pblk gc_policy {self.gc_policy!r} is not one of {', '.join(GC_POLICIES)}")
        if min(self.gc_d, self.gc_foreground, self.rl_low_div, self.write_buffer_entries) < 1:
            raise ValueError("pblk gc_d, gc_foreground, rl_low_div and write_buffer_entries must be >= 1")
        if not 0 <= self.gc_background < 1 or self.capacity_sectors < 0 or self.gc_seed < 0:
            raise ValueError("pblk gc_background must be in [0, 1); capacity_sectors and gc_seed >= 0")
