"""The AppNVM FTL's tunables as plain values, so a host-side configuration (oxhost.config's
[ftl] and [appnvm] sections) reaches the device through `Machine(appnvm=...)` without
oxemu importing anything of the host. The defaults are the FTL's built-in behaviour."""
from dataclasses import dataclass

GC_POLICIES = ("greedy", "cost-benefit", "fifo", "random", "d-choice")
WEAR_LEVELING = ("none", "dynamic")


@dataclass(frozen=True)
class AppNvmParams:
    """Victim policy, GC thresholds, buffer depth, wear levelling and checkpoint interval.

    gc_policy: greedy (fewest valid sectors), cost-benefit (largest (1 - u) x age / (1 + u),
    u the valid fraction, age in units written since the block was last written), fifo
    (the block first written longest ago), random (uniform), d-choice (fewest valid of
    gc_d blocks drawn uniformly); the last two draw from a generator seeded with gc_seed.
    Only closed blocks holding some garbage are candidates; when the policy's victim does
    not fit the room GC has, the greedy one is tried.
    gc_foreground: free blocks beyond the metadata's floor held for GC alone (user
    writes may not take them). gc_background: GC runs in the write path while fewer than
    reserve + max(1, floor(gc_background x LUNs)) blocks are free.
    write_buffer_units_per_lun: modeled buffer depth (units in flight per LUN).
    wear_leveling: none (free blocks in list order) or dynamic (the free block with the
    lowest erase count). checkpoint_interval_blocks: blocks' worth of units between map
    checkpoints; 0 = max(4, blocks // 8).
    """

    gc_policy: str = "greedy"
    gc_d: int = 4
    gc_seed: int = 0
    gc_background: float = 0.125
    gc_foreground: int = 1
    write_buffer_units_per_lun: int = 2
    wear_leveling: str = "none"
    checkpoint_interval_blocks: int = 0

    def __post_init__(self):
        if self.gc_policy not in GC_POLICIES:
            raise ValueError(f"AppNVM gc_policy {self.gc_policy!r} is not one of {', '.join(GC_POLICIES)}")
        if self.wear_leveling not in WEAR_LEVELING:
            raise ValueError(f"AppNVM wear_leveling {self.wear_leveling!r} is not one of "
                             f"{', '.join(WEAR_LEVELING)}")
        if self.gc_d < 1 or self.gc_foreground < 1 or self.write_buffer_units_per_lun < 1:
            raise ValueError("AppNVM gc_d, gc_foreground and write_buffer_units_per_lun must be >= 1")
        if not 0 <= self.gc_background < 1 or self.checkpoint_interval_blocks < 0 or self.gc_seed < 0:
            raise ValueError("AppNVM gc_background must be in [0, 1); checkpoint_interval_blocks "
                             "and gc_seed must be >= 0")
