"""Fault injection for VOLT: factory bad blocks, grown bad blocks, program and read
failures, and a power cut at the N-th media operation (SPEC 8).

Program and erase failures are permanent: the FTLs retire the block they hit, so a
campaign that must keep its device writable caps how many the rates may draw
(`permanent_limit`); read errors are transient and never capped. `observer` is a lab
instrument: it hears of every batch of media operations before VOLT runs it, so a
campaign can tell which operation a power cut would interrupt.
"""
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Faults:
    """All rates are per operation; sets name exact places. Seeded, so runs repeat.

    permanent_limit: at most this many program and erase failures are drawn from the
    rates (None: no limit); failures the sets name always happen. `injected` counts the
    program and erase failures injected so far, from the sets and the rates.
    observer(op, first, count): called before VOLT runs `count` media operations of kind
    op ("erase", "program" or "read") numbered first, first + 1, ... from 0 at power-on
    (those past a power cut do not run)."""
    seed: int = 0
    factory_bad: set = field(default_factory=set)       # {(ch, lun, blk, pl)}
    factory_bad_rate: float = 0.0                        # fraction of block-planes
    erase_fail: set = field(default_factory=set)         # {(ch, lun, blk)}: goes grown-bad
    erase_fail_rate: float = 0.0
    program_fail: set = field(default_factory=set)       # {(ch, lun, blk, pg)}
    program_fail_rate: float = 0.0
    read_error_rate: float = 0.0
    power_cut_after: int | None = None                   # media ops before the plug is pulled
    permanent_limit: int | None = None                   # program/erase failures the rates may draw
    observer: Callable[[str, int, int], None] | None = None

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)
        self.injected = dict(program=0, erase=0)
        self._drawn = 0                                   # permanent failures drawn from the rates

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    @property
    def permanent(self) -> int:
        """Program and erase failures injected so far."""
        return self.injected["program"] + self.injected["erase"]

    def _draw_permanent(self, rate: float) -> bool:
        if self.permanent_limit is not None and self._drawn >= self.permanent_limit:
            return False
        if not self.roll(rate):
            return False
        self._drawn += 1
        return True

    def program_fails(self, ch: int, lun: int, blk: int, pg: int) -> bool:
        """Whether the program of this page (on any plane) fails."""
        if (ch, lun, blk, pg) in self.program_fail or self._draw_permanent(self.program_fail_rate):
            self.injected["program"] += 1
            return True
        return False

    def erase_fails(self, ch: int, lun: int, blk: int) -> bool:
        """Whether the erase of this block-plane fails (the block-plane turns grown bad)."""
        if (ch, lun, blk) in self.erase_fail or self._draw_permanent(self.erase_fail_rate):
            self.injected["erase"] += 1
            return True
        return False

    def factory_bad_table(self, shape) -> np.ndarray:
        """Initial bad-block mask (ch, lun, blk, pl) for a new media."""
        mask = np.zeros(shape, dtype=bool)
        if self.factory_bad_rate > 0:
            mask |= np.random.default_rng(self.seed).random(shape) < self.factory_bad_rate
        for ch, lun, blk, pl in self.factory_bad:
            mask[ch, lun, blk, pl] = True
        return mask
