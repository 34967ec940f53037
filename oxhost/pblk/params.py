"""pblk's tunables as one value the stack hands the target (oxhost.config's [ftl] and [pblk]
sections): capacity from over-provisioning, the GC victim policy, the rate limiter's
thresholds and the write buffer's size. The defaults are Linux 4.12 pblk's constants."""
from dataclasses import dataclass

GC_POLICIES = ("greedy", "cost-benefit", "fifo", "random", "d-choice")


@dataclass(frozen=True)
class PblkParams:
    """op: fraction of the target's chunks kept back (OVER_PROVISION_PCT = 20): exported
    sectors = floor(chunks x (1 - op)) x sectors per chunk; capacity_sectors, when not 0,
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
