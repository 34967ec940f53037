"""Figures checked against theory: the closed-form write amplification of FIFO cleaning
under uniform random overwrite, and each FTL's effective over-provisioning -- the spare
its GC can really use, which is what the closed form must be given.

Desnoyers (SYSTOR'12, "Analytic modeling of SSD write performance"): with FIFO (LRW)
cleaning and uniformly random single-page writes, a victim's valid fraction X solves
X = exp(-(1 - X) / alpha), alpha = user capacity / physical capacity, and the write
amplification is 1 / (1 - X). Greedy cleaning moves no more than that.

The knob `ftl.op` is a fraction of the raw blocks; GC sees less. Effective OP here is the
physical space GC can fill with data and garbage in steady state, beyond the exported
capacity, over the exported capacity, from what each FTL reports of its own rules:

  pblk (its ftl_params: lines, line_sectors, rl_high_sectors): lines x data sectors per
    line (smeta and emeta left out), less the free space its rate limiter settles at.
    GC runs while fewer than rl_high sectors are free and takes (high - free) / free of
    the write buffer per user entry, so it keeps pace with a write amplification of WA
    when free = high / WA; WA itself is the closed form at the effective OP: a fixed
    point, solved here.
  AppNVM (its report: total_blocks, gc_low_blocks, gc_reserve_blocks): every block, less
    the free blocks GC keeps (it collects while fewer than gc_low are free), less the
    blocks the last checkpoint takes (from one up to the span of one checkpoint,
    gc_reserve_blocks - 1 - ftl.gc_foreground: their mean), less half of the open blocks
    (one user block per LUN and the GC block, half written on average).
  Other stacks: not known (a plug-in FTL keeps its reserves to itself).

Pure functions of results.json's `config`, `geometry` and `params`: the report computes
them for any run, a sweep for every point."""
from __future__ import annotations

import math

SECTOR = 4096


def fifo_victim_valid(alpha: float) -> float | None:
    """The valid fraction X of a FIFO victim: the root below 1 of X = exp(-(1 - X) / alpha);
    None when alpha >= 1 (no spare: GC cannot free anything)."""
    if not 0 < alpha < 1:
        return None
    f = lambda x: x - math.exp(-(1.0 - x) / alpha)       # noqa: E731 - f(0) < 0 < f(1 - eps)
    lo, hi = 0.0, 1.0
    for _ in range(200):                                  # bisection: X is a fixed point, not a fraction
        mid = (lo + hi) / 2
        if hi - lo < 1e-15:
            break
        if f(mid) > 0:
            hi = mid
        else:
            lo = mid
    return lo


def fifo_wa(op: float | None) -> float | None:
    """Closed-form write amplification of FIFO cleaning at over-provisioning `op` (spare
    over user capacity; alpha = 1 / (1 + op)); None when op <= 0."""
    if op is None or op <= 0:
        return None
    x = fifo_victim_valid(1.0 / (1.0 + op))
    return None if x is None else 1.0 / (1.0 - x)


def _pblk(params: dict, exported: int) -> dict | None:
    if not all(k in params for k in ("lines", "line_sectors", "rl_high_sectors")):
        return None
    units = int(params["lines"])
    data = int(params["lines"]) * int(params["line_sectors"])
    high = float(params["rl_high_sectors"])

    def spare(op: float) -> float:                        # the OP the free space of WA(op) leaves
        wa = fifo_wa(op)
        return (data - (high / wa if wa else 0.0) - exported) / exported

    lo, hi = 1e-9, (data - exported) / exported           # op - spare(op) rises from < 0 to > 0
    if hi <= lo:
        free = 0.0
    else:
        for _ in range(200):
            mid = (lo + hi) / 2
            if mid - spare(mid) > 0:
                hi = mid
            else:
                lo = mid
        wa = fifo_wa(hi)
        free = high / wa if wa else 0.0
    return dict(physical_sectors=data, held_free_sectors=free, held_meta_sectors=0.0,
                held_open_sectors=0.0, gc_units=units, gc_unit="lines")


def _appnvm(params: dict, geometry: dict, config: dict, exported: int) -> dict | None:
    if not all(k in params for k in ("total_blocks", "gc_low_blocks", "gc_reserve_blocks")):
        return None
    g = geometry
    block = g["npages"] * g["nplanes"] * g["nsectors"]
    luns = g["nchannels"] * g["nluns"]
    span = max(1, int(params["gc_reserve_blocks"]) - 1 - int(config.get("ftl", {}).get("gc_foreground", 1)))
    meta = (span + 1) / 2                     # the last checkpoint's blocks: one, up to its span
    free = int(params["gc_low_blocks"])
    opened = (luns + 1) / 2
    return dict(physical_sectors=int(params["total_blocks"]) * block, held_free_sectors=free * block,
                held_meta_sectors=meta * block, held_open_sectors=opened * block,
                gc_units=int(params["total_blocks"]), gc_unit="blocks")


def effective_op(params: dict, geometry: dict, config: dict) -> dict | None:
    """{effective_op, physical_sectors, held_*_sectors, exported_sectors, gc_units, gc_unit} of one
    stack from its params (results.json `params.<stack>`), or None when its FTL does not
    say enough (a plug-in FTL)."""
    exported = int(params.get("capacity_bytes") or 0) // SECTOR
    if not exported:
        return None
    parts = _pblk(params, exported) or _appnvm(params, geometry, config, exported)
    if parts is None:
        return None
    usable = (parts["physical_sectors"] - parts["held_free_sectors"] - parts["held_meta_sectors"]
              - parts["held_open_sectors"])
    return dict(parts, exported_sectors=exported, effective_op=(usable - exported) / exported)


def raw_op(geometry: dict, exported_bytes: int) -> float:
    """Raw blocks beyond the exported capacity over it: the spare a reader of the knob
    would assume."""
    g = geometry
    raw = g["nchannels"] * g["nluns"] * g["nblocks"] * g["npages"] * g["nplanes"] * g["nsectors"]
    exported = exported_bytes // SECTOR
    return (raw - exported) / exported if exported else 0.0


def stack_theory(params: dict, geometry: dict, config: dict) -> dict:
    """Everything the report says of one stack against theory: the knob, the raw spare,
    the effective OP and the closed-form FIFO WA at each."""
    eff = effective_op(params, geometry, config)
    raw = raw_op(geometry, int(params.get("capacity_bytes") or 0))
    out = dict(knob_op=config.get("ftl", {}).get("op"), raw_op=raw, closed_form_wa_raw=fifo_wa(raw),
               effective_op=None, closed_form_wa=None)
    if eff is not None:
        out.update(eff, closed_form_wa=fifo_wa(eff["effective_op"]))
    return out


def of(results: dict) -> dict:
    """{stack: stack_theory} for a plan's results (results.json `theory`)."""
    return {s: stack_theory(p, results["geometry"], results["config"]) for s, p in results.get("params", {}).items()}


__all__ = ["effective_op", "fifo_victim_valid", "fifo_wa", "of", "raw_op", "stack_theory"]
