"""The vocabulary of a compare run's results (results.json), shared by the runner that
fills them and the report and figures that read them -- the lowest layer of the package:
it imports none of them.

    stacks.<name>.<workload>.<QD>   the figures of one run (summary)
    modes.<name>                    the stack mode string the name stands for (oxhost.stack)
    params.<name>                   what the stack's FTL made of the configuration
    series / cdf / wear .<name>...  time series, latency CDFs, erase and validity maps

`name` is the stack's short name (compare.stacks.names): pblk, appnvm, Class@host, ...
"""
from __future__ import annotations

GIB = 1 << 30
MEASURED = ("wall_s", "host_cpu_s", "host_cpu_s_per_gib")      # wall-clock figures: not modeled

# Sectors GC moved so far, wherever a stack reports it in a series point: a host-side
# block device's stats() (pblk; an NVMe namespace's log page for AppNVM), a plug-in
# FTL's own stats() `gc_sectors` in the host or in the device, AppNVM's device counters.
_GC_KEYS = ("host.gc_sectors_moved", "host.ftl_stats.gc_sectors", "dev.ftl.ftl_stats.gc_sectors",
            "dev.ftl.gc_sectors")


def speed_line(results) -> str:
    """The simulator's pace in one line: requests simulated per wall second per core."""
    sp = results.get("speed")
    if not sp:
        return "simulator speed not recorded"
    if not sp["requests"]:
        return "no requests simulated (every run came from the cache)"
    cores = f"{sp['cores']} cores" if sp["cores"] != 1 else "1 core"
    return (f"{sp['requests']:,} requests simulated in {sp['wall_s']:.1f} s on {cores}: "
            f"{sp['requests_per_s_per_core']:,.0f} per wall second per core")


def runs_line(results) -> str:
    """Where a sweep's runs ran: how many were computed, on what, and how many came from
    the cache."""
    r = results.get("sweep", {}).get("runs")
    if not r:
        return "runs not recorded"
    on = f"the Dask cluster at {r['cluster']}" if r.get("cluster") else \
        f"{r['workers']} worker process{'es' if r['workers'] != 1 else ''}" if r["workers"] > 1 else "this process"
    cached = f", {r['cached']} from the cache" if r["cached"] else ""
    return f"{r['total']} runs: {r['computed']} computed on {on}{cached}"


def stacks(results) -> list:
    """The stacks' names, in the order they ran."""
    return list(results.get("stacks", {}))


def workloads(results) -> list:
    return list(results.get("workloads", {}))


def headline(results, name, wl) -> dict | None:
    """A workload's figures at its first (headline) queue depth."""
    by_qd = results["stacks"].get(name, {}).get(wl)
    if not by_qd:
        return None
    return by_qd.get(str(results["workloads"][wl]["qds"][0]))


def at(results, name, wl, qd) -> dict | None:
    return results["stacks"].get(name, {}).get(wl, {}).get(str(qd))


def capacity_of(results, name) -> int:
    """Bytes the stack exported (plug-in FTLs choose their own), else the run's."""
    return (results.get("params", {}).get(name) or {}).get("capacity_bytes") or results.get("capacity_bytes") or 1


def gc_moved(point: dict) -> float | None:
    """Sectors GC has moved so far at a series point; None when the stack does not say."""
    for k in _GC_KEYS:
        if k in point:
            return float(point[k])
    return None
