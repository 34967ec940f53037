"""Sweeps of configuration keys: the grid of points, each point's stacks as separate runs
on fresh devices -- in parallel processes on every core by default, or on a Dask cluster
(cluster.py) -- finished runs kept in a cache (cache.py) so a stopped or grown sweep runs
only what it lacks, and one progress bar over the whole grid.

A run is one stack at one point: the plan's sweep workload at its first queue depth on a
fresh device of that stack with that point's configuration. Its modeled figures depend on
nothing else, so they are the same in this process, in a worker, on a cluster or from
the cache; the results are put together in grid order whatever order the runs end in."""
from __future__ import annotations

import functools
import itertools
import json
import time
from dataclasses import asdict, dataclass

from ..config import SECTOR_NBYTES, Config, ConfigError
from . import cluster as cluster_
from . import stacks as stacks_
from .cache import RunCache, run_key

__all__ = ["RunCache", "Run", "parse_sweep", "run_grid", "simulated", "speed", "sweep_points"]


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """'section.key=v1,v2,...' -> (key, [values]); ConfigError naming the key otherwise."""
    key, eq, vals = text.partition("=")
    key = key.strip()
    values = [v.strip() for v in vals.split(",") if v.strip()]
    if not eq or not key or not values:
        raise ConfigError(key or None, f"--sweep {text!r}: expected section.key=value1,value2,...")
    return key, values


def sweep_points(cfg: Config, sweeps) -> list[tuple[dict, Config]]:
    """The grid: every combination of the swept values, each as (assignments, Config);
    every point's configuration is checked before anything runs."""
    axes = [parse_sweep(s) if isinstance(s, str) else s for s in sweeps]
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(keys[0], "swept more than once")
    out = []
    for combo in itertools.product(*[v for _, v in axes]):
        sets = [f"{k}={v}" for k, v in zip(keys, combo)]
        out.append((dict(zip(keys, combo)), cfg.with_overrides(sets)))
    return out


@dataclass(frozen=True)
class Run:
    """One stack at one grid point: what the runner's run_one runs."""
    point: int
    name: str               # the stack's short name (stacks.names)
    mode: str
    config: Config
    workload: object        # workloads.Workload
    qd: int
    seed: int


def _plain(obj):
    """JSON data as results.json holds it: a run's figures are the same objects whether
    computed here, in a worker, on a cluster or read from the cache."""
    return json.loads(json.dumps(obj, default=float))


def execute(run_one, run: Run, progress=None) -> dict:
    """One run (in whatever process it was sent to): its summary, series and the stack's
    parameters, as plain JSON data, and what it cost (simulated requests, wall and CPU
    seconds)."""
    w0, c0 = time.perf_counter(), time.process_time()
    one = run_one(run.config, run.mode, run.workload, run.qd, run.seed, progress=progress)
    s = one["summary"]
    s.pop("final_stats", None)
    cost = dict(requests=s.get("simulated_requests", 0), wall_s=time.perf_counter() - w0,
                cpu_s=time.process_time() - c0)
    return dict(summary=_plain(s), series=_plain(one["series"]), params=_plain(one["params"]),
                steady=_plain(one.get("steady")), cost=cost)


def run_grid(plan, points, stacks, seed: int, run_one, work, *, workers: int = 1, cluster: str | None = None,
             cache: RunCache | None = None, progress: bool = False, echo=None) -> dict:
    """The plan's sweep workload at each grid point on each stack (mode strings): runs
    from `cache` where it has them, the others on `workers` processes of this machine
    (1: in this process) or on the Dask cluster at `cluster`; each finished run is added
    to the cache. `run_one` is the runner's (config, mode, workload, qd, seed, progress);
    `work(workload, config)` a run's share of the progress bar."""
    w = plan.sweep_workload
    qd = w.qds[0]
    named = stacks_.names(stacks)
    runs = [Run(p, name, mode, c, w, qd, seed) for p, (_, c) in enumerate(points) for mode, name in named.items()]
    shares = [work(w, r.config) for r in runs]
    keys = [run_key(r.config.to_dict(), r.mode, w, qd, seed) for r in runs] if cache is not None else []
    results: list[dict | None] = [cache.get(k) for k in keys] if cache is not None else [None] * len(runs)
    todo = [i for i, r in enumerate(results) if r is None]
    cached = len(runs) - len(todo)

    bar = _bar(sum(shares), progress, "req" if w.kind in ("fio", "trace") else "B")
    done = [0]

    def describe():
        return f"sweep: {done[0] + cached}/{len(runs)} runs" + (f" ({cached} from the cache)" if cached else "")

    if bar is not None:
        bar.update(sum(shares[i] for i in range(len(runs)) if results[i] is not None))
        bar.set_description(describe())

    def on_progress(j: int, units: int) -> None:
        if bar is not None:
            bar.update(units)

    def on_done(j: int, result: dict) -> None:
        i = todo[j]
        results[i] = result
        done[0] += 1
        if cache is not None:
            r = runs[i]
            cache.put(keys[i], result, about=dict(set=points[r.point][0], stack=r.name, mode=r.mode,
                                                  workload=w.name, qd=qd, seed=seed))
        if bar is not None:
            bar.set_description(describe())

    fn = functools.partial(execute, run_one)
    tasks = [runs[i] for i in todo]
    where = dict(workers=1, cluster=None)
    t0 = time.perf_counter()
    try:
        if not tasks:
            pass
        elif cluster:
            got = cluster_.run_cluster(fn, tasks, cluster, on_progress, on_done, [shares[i] for i in todo], echo)
            where = dict(workers=got["threads"], cluster=cluster)
        elif workers > 1 and len(tasks) > 1:
            cluster_.run_local(fn, tasks, workers, on_progress, on_done)
            where = dict(workers=min(workers, len(tasks)), cluster=None)
        else:
            cluster_.run_here(fn, tasks, on_progress, on_done)
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0

    out = dict(plan=plan.name, seed=seed, config=plan.config.to_dict(), geometry=asdict(plan.geometry),
               capacity_bytes=plan.config.exported_sectors() * SECTOR_NBYTES,
               modes={n: m for m, n in named.items()},
               sweep=dict(keys=list(points[0][0]), workload=w.name, title=w.title, qd=qd, points=[],
                          runs=dict(total=len(runs), computed=len(tasks), cached=cached, **where)))
    for p, (assign, c) in enumerate(points):
        pt = dict(set=assign, capacity_bytes=c.exported_sectors() * SECTOR_NBYTES,
                  config=c.to_dict(), stacks={}, series={}, params={}, steady={})
        out["sweep"]["points"].append(pt)
    for r, res in zip(runs, results):
        pt = out["sweep"]["points"][r.point]
        pt["stacks"][r.name] = res["summary"]
        pt["series"][r.name] = res["series"]
        pt["params"][r.name] = res["params"]
        pt["steady"][r.name] = res.get("steady")        # None from a cache entry made without it
    simulated = sum(results[i]["cost"]["requests"] for i in todo)
    out["speed"] = speed(simulated, wall, where["workers"] if tasks else 1)
    return out


def simulated(results) -> int:
    """Requests the engine simulated in a plan's runs: prefills, rounds, tenants run alone
    and the fresh-out-of-box runs beside steady state included."""
    runs = sum(int(s.get("simulated_requests", 0)) for by_wl in results.get("stacks", {}).values()
               for by_qd in by_wl.values() for s in by_qd.values())
    return runs + sum(int(s.get("simulated_requests", 0)) for by_wl in (results.get("fob") or {}).values()
                      for s in by_wl.values())


def speed(requests: int, wall_s: float, cores: int) -> dict:
    """The simulator's pace: requests simulated per wall second per core in use."""
    return dict(requests=int(requests), wall_s=wall_s, cores=cores,
                requests_per_s_per_core=requests / wall_s / cores if wall_s > 0 and cores else 0.0)


def _bar(total: int, progress: bool, unit: str):
    if not progress:
        return None
    from tqdm import tqdm
    if unit == "B":
        return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="sweep", dynamic_ncols=True)
    return tqdm(total=total, unit=unit, unit_scale=True, desc="sweep", dynamic_ncols=True)
