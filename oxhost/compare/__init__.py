"""`ox compare`: the same workloads on host pblk and on the device's AppNVM FTL, on fresh
media with the NAND timing model on, at queue depths in virtual time, from one
configuration; written up as tables, JSON and plots."""
from .runner import Plan, run_compare

__all__ = ["Plan", "run_compare"]
