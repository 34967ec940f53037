"""Where the runs of a sweep execute: in this process, in worker processes on this
machine's cores, or on a Dask cluster (`--cluster ADDRESS`).

Every run builds its own stacks on volatile media and shares nothing with another (no
disk file, no mount), so runs may go anywhere in any order; the sweep puts their results
back in grid order. A run computes the same modeled figures wherever it runs: a cluster
is refused when one of its workers runs other code (cache.code_version differs).

Dask over Ray, by figures taken on the project's 2-core machine (a local cluster of two
worker processes; idle machine, then in brackets the machine shared at a load of 6): Dask
was up in 0.6 s (2.1-4.2 s), Ray in 2.4 s (7.1-7.6 s); a task cost Dask 10.5 ms there and
back (1.6 ms each in a batch of 500) against Ray's 1.4 ms (0.5 ms), which does not matter
for runs of seconds to minutes; `distributed` and what it pulls in are a 5 MB download and
38 MB installed, Ray a 79 MB wheel and 261 MB installed. And Dask runs on the batch
schedulers labs already have (dask-jobqueue: SLURM, PBS, SGE, LSF) as well as on a plain
`dask scheduler` / `dask worker` pair.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable

from .cache import code_version

# A run is fn(task, progress) -> result; progress(units) moves the sweep's bar.
Runner = Callable[[object, Callable[[int], None] | None], dict]
OnProgress = Callable[[int, int], None]        # (task index, units)
OnDone = Callable[[int, dict], None]           # (task index, result)


class ClusterError(Exception):
    """The cluster cannot run the sweep: unreachable, no workers, or workers that cannot
    import this code or run another version of it."""


def default_workers(task_bytes: int = 0) -> tuple[int, str | None]:
    """Worker processes for this machine: one per core this process may use, fewer when
    the memory available does not hold that many runs of `task_bytes` each. (count, a
    note saying why when memory set it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    avail = _mem_available()
    if task_bytes and avail:
        fit = max(1, avail // task_bytes)
        if fit < cores:
            return int(fit), (f"{fit} of {cores} cores: the {avail / 2**30:.1f} GiB of memory available holds "
                              f"{fit} run(s) of up to {task_bytes / 2**30:.1f} GiB at once")
    return cores, None


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- in this process

def run_here(fn: Runner, tasks: list, on_progress: OnProgress, on_done: OnDone) -> None:
    """The runs one after the other in this process."""
    for i, task in enumerate(tasks):
        on_done(i, fn(task, lambda n, i=i: on_progress(i, n)))


# ---------------------------------------------------------------- worker processes

_progress: multiprocessing.Queue | None = None      # a worker process's line back to the sweep


def _worker_init(q) -> None:
    """In each worker process: Ctrl-C is the sweep's to handle (it stops the workers), and
    progress goes back on `q`."""
    global _progress
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _progress = q
    q.put(("pid", os.getpid(), 0))


class _Throttle:
    """Progress units sent back at most every 0.2 s, the rest when the run ends."""

    def __init__(self, q, i: int):
        self.q, self.i, self.units, self.at = q, i, 0, time.monotonic()

    def __call__(self, n: int) -> None:
        self.units += n
        now = time.monotonic()
        if now - self.at >= 0.2:
            self.flush()
            self.at = now

    def flush(self) -> None:
        if self.units:
            self.q.put(("progress", self.i, self.units))
            self.units = 0


def _in_worker(fn: Runner, i: int, task) -> dict:
    bar = _Throttle(_progress, i) if _progress is not None else None
    try:
        return fn(task, bar)
    finally:
        if bar is not None:
            bar.flush()


def run_local(fn: Runner, tasks: list, workers: int, on_progress: OnProgress, on_done: OnDone) -> None:
    """The runs on `workers` processes of this machine (spawned: no state of this process
    is inherited); results are handed to on_done as they finish. The first run that
    fails stops the others and raises; so does Ctrl-C."""
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    pids: set[int] = set()
    ex = cf.ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                initializer=_worker_init, initargs=(q,))

    def drain() -> None:
        while True:
            try:
                kind, a, b = q.get_nowait()
            except queue.Empty:
                return
            if kind == "pid":
                pids.add(a)
            else:
                on_progress(a, b)

    ok = False
    try:
        futs = {ex.submit(_in_worker, fn, i, t): i for i, t in enumerate(tasks)}
        pending = set(futs)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            drain()
            for f in sorted(done, key=futs.get):
                on_done(futs[f], f.result())
        drain()
        ok = True
    finally:
        ex.shutdown(wait=ok, cancel_futures=True)
        if not ok:
            for pid in pids:            # runs still going: ours to stop
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        q.close()
        q.join_thread()


# ---------------------------------------------------------------- a Dask cluster

_one_run = threading.Lock()         # a Dask worker with several threads runs one run at a time


def _on_dask_worker(fn: Runner, task) -> dict:
    with _one_run:
        return fn(task, None)


def worker_info() -> dict:
    """What a worker runs (called on each worker of a cluster)."""
    import platform
    return dict(code=code_version(), python=platform.python_version(), host=platform.node(), pid=os.getpid())


def run_cluster(fn: Runner, tasks: list, address: str, on_progress: OnProgress, on_done: OnDone,
                work: list[int], echo=None, connect_timeout: float = 10.0) -> dict:
    """The runs on the Dask cluster whose scheduler is at `address` (tcp://host:8786);
    each finished run moves the bar by its `work`. Returns what the cluster was:
    {address, workers, threads}."""
    check_address(address)
    from distributed import Client, as_completed
    try:
        client = Client(address, timeout=connect_timeout, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    try:
        info = _check_workers(client, address, connect_timeout)
        nthreads = client.nthreads()
        if echo is not None and any(n > 1 for n in nthreads.values()):
            echo(f"note: workers of {address} run several threads each; each runs one ox run at a time, so start "
                 f"them with --nthreads 1 and one worker process per core (--nworkers N)")
        futs = {client.submit(_on_dask_worker, fn, t, pure=False): i for i, t in enumerate(tasks)}
        try:
            for f in as_completed(list(futs), loop=client.loop):
                i = futs[f]
                result = f.result()
                on_progress(i, work[i])
                on_done(i, result)
        except BaseException:
            client.cancel(list(futs))
            raise
        return dict(address=address, workers=len(info), threads=sum(nthreads.values()))
    finally:
        client.close()


def check_address(address: str) -> None:
    """A scheduler address Dask can dial (tcp://host:port, tls://..., host:port), else
    ClusterError -- before a client is made of it."""
    try:
        from distributed.comm import parse_address, parse_host_port
        from distributed.comm.registry import backends
    except ImportError as e:
        raise ClusterError(f"a cluster needs Dask's distributed package ({e}): pip install distributed") from None
    try:
        scheme, loc = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r} ({', '.join(sorted(backends))})")
        if scheme in ("tcp", "tls"):
            parse_host_port(loc)
    except ValueError as e:
        raise ClusterError(f"{address!r} is not a Dask scheduler address like tcp://host:8786: {e}") from None


def _check_workers(client, address: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while not client.scheduler_info().get("workers"):
        if time.monotonic() > deadline:
            raise ClusterError(f"the Dask scheduler at {address} has no workers (start some with: "
                               f"dask worker {address} --nthreads 1)")
        time.sleep(0.2)
    try:
        info = client.run(worker_info)
    except Exception as e:          # noqa: BLE001 - whatever the worker raised importing ox: one line
        raise ClusterError(f"a worker of {address} cannot run ox ({type(e).__name__}: {e}): install the project "
                           f"on every worker and start the workers from its environment") from None
    mine = code_version()
    other = {w: i for w, i in info.items() if i["code"] != mine}
    if other:
        w, i = next(iter(other.items()))
        raise ClusterError(f"worker {w} ({i['host']}) runs another version of ox (code {i['code']}, here {mine}): "
                           f"its figures could differ; install this version on every worker")
    return info
