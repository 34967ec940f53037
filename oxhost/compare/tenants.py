"""Per-tenant figures: when several jobs share one drive -- the sections of a fio job file,
`--tenants`, the reader and the writer of the interference workload -- each job is a
tenant with its own throughput, latency percentiles, share of the write amplification
and GC-induced stalls, and the tenants of one group (jobs that run at once) get a
fairness figure.

  throughput     bytes over the run's virtual time (so the tenants' figures add up to the
                 run's); `active_mib_s` over the tenant's own span (first issue to last
                 completion), the rate it got while it ran.
  WA share       the media bytes programmed (user data, GC copies, metadata) in each
                 sampling interval of the run are charged to the tenants in proportion to
                 the bytes each wrote in it (by completion time); what no interval holds
                 (no samples, or after the last one) in proportion to all bytes written.
                 The shares add up to the run's media bytes.
  alone          the tenant's figures when it runs by itself on the same device (the
                 runner measures every tenant of a group alone after the group).
  normalised     active_mib_s / alone_mib_s: the share of its demand it got (a rate-capped
                 tenant alone runs at its cap, so its demand is its cap).
  stalls         requests that completed while GC was moving data (a sampling interval in
                 which the stack's GC counter rose) and took longer than the tenant's own
                 p99 alone; their count, share and the time they spent beyond that bound.
  Jain's index   (sum x)^2 / (n sum x^2) over the group's normalised throughputs x: 1.0
                 when every tenant got the same share of its demand, 1/n when one got all.
"""
from __future__ import annotations

import numpy as np

from .results import gc_moved

MIB = 1 << 20
MEDIA = "dev.media_bytes_programmed"


def jain(xs) -> float | None:
    """Jain's fairness index of the values (None ones left out); None without any."""
    v = np.asarray([x for x in xs if x is not None], dtype=float)
    if not v.size or not np.any(v):
        return None
    return float(v.sum() ** 2 / (v.size * (v ** 2).sum()))


def _pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) / 1000 if a.size else 0.0


def _lat(lat: np.ndarray) -> dict:
    return dict(lat_p50_us=_pct(lat, 50), lat_p99_us=_pct(lat, 99), lat_p999_us=_pct(lat, 99.9),
                lat_max_us=float(lat.max()) / 1000 if lat.size else 0.0)


def _by_name(jobs) -> dict:
    """{name: [JobResult, ...]}: a tenant's records in every run pooled into one."""
    out: dict = {}
    for j in jobs:
        out.setdefault(j.name, []).append(j)
    return out


def _cat(parts, attr):
    arrs = [getattr(p, attr) for p in parts]
    return np.concatenate(arrs) if arrs else np.zeros(0, np.int64)


def _charge(res, media_total: float) -> dict:
    """{tenant: media bytes charged} (module docstring: WA share)."""
    names = list(_by_name(res.jobs))
    wr = {n: (_cat(p, "done_ns")[_cat(p, "op") == 1], _cat(p, "nbytes")[_cat(p, "op") == 1])
          for n, p in _by_name(res.jobs).items()}
    out = dict.fromkeys(names, 0.0)
    pts = [p for p in res.series if MEDIA in p]
    last_t, last_m, left = -1, 0.0, 0.0
    for p in pts:
        t, mb = p["virtual_ns"], float(p[MEDIA])
        dm = mb - last_m + left
        got = {n: float(nb[(done > last_t) & (done <= t)].sum()) for n, (done, nb) in wr.items()}
        tot = sum(got.values())
        if tot > 0:
            for n in names:
                out[n] += dm * got[n] / tot
            left = 0.0
        else:
            left = dm
        last_t, last_m = t, mb
    rest = media_total - sum(out.values())
    tot = {n: float(nb.sum()) for n, (_, nb) in wr.items()}
    if sum(tot.values()) > 0:
        for n in names:
            out[n] += rest * tot[n] / sum(tot.values())
    return out


def per_job(res, media_total: float) -> dict:
    """Each tenant's own figures in a run (RunResult; records of one name pooled):
    role, qd, requests, bytes, throughput over the run and over its own span, latency
    percentiles, media bytes charged and WA share."""
    vs = (res.end_ns - res.start_ns) / 1e9
    charged = _charge(res, media_total) if media_total else {}
    out = {}
    for name, parts in _by_name(res.jobs).items():
        op, nb = _cat(parts, "op"), _cat(parts, "nbytes")
        io = op <= 1
        lat = _cat(parts, "done_ns") - _cat(parts, "issue_ns")
        span = sum(int(p.done_ns.max() - p.issue_ns.min()) for p in parts if p.op.size) / 1e9
        nbytes = int(nb[io].sum())
        written = int(nb[op == 1].sum())
        media = charged.get(name, 0.0)
        out[name] = dict(role=parts[0].role, qd=parts[0].qd, requests=int(op.size), bytes=nbytes,
                         bytes_written=written, bytes_read=int(nb[op == 0].sum()),
                         throughput_mib_s=nbytes / MIB / vs if vs else 0.0,
                         active_mib_s=nbytes / MIB / span if span else 0.0,
                         **_lat(lat[io]), media_bytes=media,
                         wa_share=media / media_total if media_total else None,
                         write_amplification=media / written if written else None)
    return out


def _gc_intervals(series) -> list[tuple[int, int]]:
    """(start, end] virtual-time intervals in which the GC counter rose; [] when the stack
    does not say what its GC moved."""
    out, last_t, last_g = [], 0, None
    for p in series:
        g = gc_moved(p)
        if g is None:
            return []
        if last_g is not None and g > last_g or last_g is None and g > 0:
            out.append((last_t, p["virtual_ns"]))
        last_t, last_g = p["virtual_ns"], g
    return out


def with_alone(jobs: dict, res, alone: dict) -> dict:
    """`jobs` (per_job) with each tenant's figures alone (alone: {name: JobResult}, its
    run by itself), normalised throughput and GC-induced stalls."""
    gc = _gc_intervals(res.series)
    by = _by_name(res.jobs)
    for name, a in alone.items():
        if name not in jobs:
            continue
        io = a.op <= 1
        lat = a.lat_ns[io]
        span = int(a.done_ns.max() - a.issue_ns.min()) / 1e9 if a.op.size else 0.0
        rate = int(a.nbytes[io].sum()) / MIB / span if span else 0.0
        j = jobs[name]
        j["alone"] = dict(active_mib_s=rate, requests=int(a.op.size), **_lat(lat))
        j["normalised"] = j["active_mib_s"] / rate if rate else None
        bound = float(np.percentile(lat, 99)) if lat.size else None
        if bound is None or not res.series or (not gc and gc_moved(res.series[-1]) is None):
            j["stalls"] = None
            continue
        parts = by[name]
        op = _cat(parts, "op")
        done = _cat(parts, "done_ns")[op <= 1]
        lat_s = (done - _cat(parts, "issue_ns")[op <= 1])
        in_gc = np.zeros(done.size, dtype=bool)
        for lo, hi in gc:
            in_gc |= (done > lo) & (done <= hi)
        slow = in_gc & (lat_s > bound)
        j["stalls"] = dict(count=int(slow.sum()), share=float(slow.mean()) if slow.size else 0.0,
                           over_s=float((lat_s[slow] - bound).sum()) / 1e9, bound_us=bound / 1000)
    return jobs


def fairness(jobs: dict, groups) -> list[dict]:
    """One entry per group of tenants that ran at once (lists of names; groups of one are
    left out): its tenants, their normalised throughputs and Jain's index over them."""
    out = []
    for g in groups:
        g = [n for n in g if n in jobs]
        if len(g) < 2:
            continue
        x = {n: jobs[n].get("normalised") for n in g}
        out.append(dict(tenants=g, normalised=x, jain=jain(x.values()) if all(v is not None for v in x.values())
                        else None))
    return out


__all__ = ["fairness", "jain", "per_job", "with_alone"]
