"""`ox compare`: the same workloads on any stacks -- host pblk, the device's AppNVM FTL,
plug-in FTLs on either side of the bus -- on fresh media with the NAND timing model on, at
queue depths in virtual time, from one configuration; written up as tables, JSON and plots.

The modules import one way: results and stacks (the vocabulary) <- figures <- placement <-
report <- runner (which also uses engine, hostclock and workloads; fiojob and traces parse
users' workloads)."""
from .runner import Plan, run_compare

__all__ = ["Plan", "run_compare"]
