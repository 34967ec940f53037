"""Fault injection for VOLT: factory bad blocks, grown bad blocks, program and read
failures, and a power cut at the N-th media operation (SPEC 8)."""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Faults:
    """All rates are per operation; sets name exact places. Seeded, so runs repeat."""
    seed: int = 0
    factory_bad: set = field(default_factory=set)       # {(ch, lun, blk, pl)}
    factory_bad_rate: float = 0.0                        # fraction of block-planes
    erase_fail: set = field(default_factory=set)         # {(ch, lun, blk)}: goes grown-bad
    erase_fail_rate: float = 0.0
    program_fail: set = field(default_factory=set)       # {(ch, lun, blk, pg)}
    program_fail_rate: float = 0.0
    read_error_rate: float = 0.0
    power_cut_after: int | None = None                   # media ops before the plug is pulled

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def factory_bad_table(self, shape) -> np.ndarray:
        """Initial bad-block mask (ch, lun, blk, pl) for a new media."""
        mask = np.zeros(shape, dtype=bool)
        if self.factory_bad_rate > 0:
            mask |= np.random.default_rng(self.seed).random(shape) < self.factory_bad_rate
        for ch, lun, blk, pl in self.factory_bad:
            mask[ch, lun, blk, pl] = True
        return mask
