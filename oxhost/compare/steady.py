"""Steady state per the SNIA Solid State Storage Performance Test Specification (PTS):
before a figure is taken, a workload-independent preconditioning -- twice the user
capacity in 128 KiB sequential writes -- and then the workload itself in rounds until
the steady-state window holds.

PTS's definition (PTS-E/PTS-C, "Steady State"): a measurement window of five
consecutive rounds in which the tracked variable y
  - has a data excursion max(y) - min(y) of at most 20 % of the window's average, and
  - has a slope excursion -- the rise or fall of the least-squares line fitted to y over
    the window, |slope| x (rounds - 1) -- of at most 10 % of that average.
Steady state is declared at the first round that closes such a window; the figures are
taken over the window. A run that reaches the round limit first (PTS: 25) is reported as
such, with the figures of its last five rounds, not called steady.

The three preconditions of `ox compare --precondition`: none (fresh out of the box: the
workload on a new device, after its own prefill), fill (the workload-independent
preconditioning, then one round) and steady (the preconditioning, then rounds to steady
state). This module is the definition; the runner runs the rounds."""
from __future__ import annotations

from dataclasses import dataclass

PRECONDITIONS = ("none", "fill", "steady")
WINDOW = 5                      # rounds in the measurement window
EXCURSION = 0.20                # max - min within the window, over its average
SLOPE_EXCURSION = 0.10          # the fitted line's rise or fall over the window, over its average
MAX_ROUNDS = 25                 # PTS's round limit
WIPC_BS = 128 * 1024            # workload-independent preconditioning: 128 KiB sequential writes
WIPC_PASSES = 2                 # ... over twice the user capacity


@dataclass(frozen=True)
class Window:
    """What the PTS tests say of the last `WINDOW` values: their average, data excursion
    and slope excursion (both as fractions of the average), and whether both hold."""
    average: float
    excursion: float
    slope_excursion: float
    holds: bool


def check(values) -> Window | None:
    """The PTS tests over `values` (one per round, the window's); None when there are
    fewer than two, a value is missing or the average is not positive."""
    y = [float(v) for v in values if v is not None]
    if len(y) < 2 or len(y) != len(values):
        return None
    n = len(y)
    avg = sum(y) / n
    if avg <= 0:
        return None
    xm = (n - 1) / 2
    slope = sum((i - xm) * (v - avg) for i, v in enumerate(y)) / sum((i - xm) ** 2 for i in range(n))
    exc = (max(y) - min(y)) / avg
    sexc = abs(slope) * (n - 1) / avg
    return Window(avg, exc, sexc, exc <= EXCURSION + 1e-12 and sexc <= SLOPE_EXCURSION + 1e-12)


def steady_round(values, window: int = WINDOW) -> int | None:
    """The first round (1-based) whose last `window` values pass the PTS tests, or None."""
    for end in range(window, len(values) + 1):
        w = check(values[end - window:end])
        if w is not None and w.holds:
            return end
    return None


def tracked(summary: dict, key: str):
    """A summary's value at a dotted key ("throughput_mib_s", "writer.throughput_mib_s")."""
    v = summary
    for part in key.split("."):
        if not isinstance(v, dict):
            return None
        v = v.get(part)
    return v


def verdict(values, max_rounds: int, window: int = WINDOW) -> dict:
    """What a run of rounds came to: {reached, round (the one that closed the window, or
    the last), window [first, last] (1-based), limit_hit, check (of the window)}."""
    n = len(values)
    end = steady_round(values, window)
    reached = end is not None
    if not reached:
        end = n
    first = max(1, end - window + 1)
    w = check(values[first - 1:end])
    return dict(reached=reached, round=end, window=[first, end], limit_hit=not reached and n >= max_rounds,
                max_rounds=max_rounds, average=w.average if w else None, excursion=w.excursion if w else None,
                slope_excursion=w.slope_excursion if w else None)


__all__ = ["EXCURSION", "MAX_ROUNDS", "PRECONDITIONS", "SLOPE_EXCURSION", "WINDOW", "WIPC_BS", "WIPC_PASSES",
           "Window", "check", "steady_round", "tracked", "verdict"]
