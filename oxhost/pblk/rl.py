"""The rate limiter: how the write buffer is shared between user and GC writes as free
lines run low (pblk-rl.c).

While free space stays at or above `high` (1/8 of all) users get the whole buffer and GC
sleeps. Below it the user share shrinks with the free space, in windows of 64 entries,
and GC gets the rest; at or below the reserve (one line) users get nothing until GC has
freed a line. pblk's thread-based limiting becomes, in this synchronous target, a quota
per drain cycle: for every user entry a cycle takes in, GC may put gc_max / user_max
entries of its own.

pblk counts free space in blocks of free lines. Here it is counted in sectors the writer
can still fill (free lines, the line erased ahead and what is left of the open line, less
what the buffer already holds): the same measure scaled by sectors per block, except that
the open line's room counts too, which matters on targets of few lines. The limiter
itself is unit-agnostic.
"""
import enum
import math
from fractions import Fraction

PBLK_USER_HIGH_THRS = 8        # begin limiting user writes at 1/8 free blocks
PBLK_USER_LOW_THRS = 10
PBLK_GC_RSV_LINE = 1           # lines kept for GC alone
PBLK_MAX_REQ_ADDRS = 64        # a rate window, in buffer entries


def thresholds(total: int, per_line: int, high_frac: float | Fraction = Fraction(1, PBLK_USER_HIGH_THRS),
               low_div: int = PBLK_USER_LOW_THRS, rsv_lines: int = PBLK_GC_RSV_LINE) -> tuple[int, int, int]:
    """The limiter's (high, low, reserve) for `total` writable sectors in lines of
    `per_line` (pblk_rl_init): reserve = rsv_lines lines, high = max(total x high_frac,
    2 reserves), low = max(total / low_div, reserve). `high` is at least two lines, so that
    on small targets GC starts a line before user writes stop; a float `high_frac` is taken
    as the decimal it prints as."""
    if isinstance(high_frac, float):
        high_frac = Fraction(repr(high_frac))
    rsv = per_line * rsv_lines
    return max(math.floor(total * Fraction(high_frac)), 2 * rsv), max(total // low_div, rsv), rsv


class RlState(enum.IntEnum):
    """PBLK_RL_*."""
    OFF = 0
    HIGH = 2
    LOW = 4


class RateLimiter:
    """struct pblk_rl."""

    __slots__ = ("budget", "free", "gc_max", "high", "high_frac", "low", "low_div", "rsv", "rsv_lines",
                 "state", "total", "user_max")

    def __init__(self, budget: int, *, high_frac: float | Fraction = Fraction(1, PBLK_USER_HIGH_THRS),
                 low_div: int = PBLK_USER_LOW_THRS, rsv_lines: int = PBLK_GC_RSV_LINE):
        """`high_frac`: the high threshold as a fraction of all sectors (taken as the
        decimal it prints as); `low_div`: the low threshold is 1/low_div of them;
        `rsv_lines`: lines held for GC alone."""
        self.budget = budget
        self.high_frac = Fraction(repr(float(high_frac))) if isinstance(high_frac, float) else Fraction(high_frac)
        self.low_div = low_div
        self.rsv_lines = rsv_lines
        self.total = 0
        self.high = self.low = self.rsv = 0
        self.user_max = budget
        self.gc_max = 0
        self.state = RlState.HIGH
        self.free = 0

    def configure(self, total: int, per_line: int) -> None:
        """pblk_rl_init (`thresholds`)."""
        self.total = total
        self.high, self.low, self.rsv = thresholds(total, per_line, self.high_frac, self.low_div, self.rsv_lines)

    def update(self, free: int) -> None:
        """pblk_rl_update_rates."""
        self.free = free
        if free >= self.high:
            self.user_max, self.gc_max, self.state = self.budget, 0, RlState.HIGH
            return
        if free <= self.rsv:
            user_max = 0
        else:
            user_max = self.budget * free // self.high
            user_max = max(PBLK_MAX_REQ_ADDRS, user_max // PBLK_MAX_REQ_ADDRS * PBLK_MAX_REQ_ADDRS)
        self.user_max = user_max
        self.gc_max = self.budget - user_max
        self.state = RlState.LOW

    @property
    def gc_active(self) -> bool:
        """pblk_gc_should_start: GC runs while the limiter is below HIGH."""
        return self.state != RlState.HIGH

    def user_room(self, nuser: int) -> int:
        """Entries user writes may still add to the buffer (pblk_rl_user_may_insert)."""
        return self.user_max - nuser

    def gc_quota(self, nuser: int, ngc: int) -> int:
        """Entries GC may add in this cycle: its share relative to the user entries the cycle
        carries, or its whole share when users are held back."""
        if not self.gc_active:
            return 0
        room = self.gc_max - ngc
        if self.user_max > 0 and nuser > 0:
            room = min(room, -(-nuser * self.gc_max // self.user_max))
        return max(0, room)

    def as_dict(self) -> dict:
        return {"state": self.state.name, "user_max": self.user_max, "gc_max": self.gc_max,
                "free_sectors": self.free, "high_sectors": self.high, "reserve_sectors": self.rsv,
                "total_sectors": self.total}
