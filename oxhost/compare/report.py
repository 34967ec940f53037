"""report.md, the console table and the configuration section of `ox compare`; the PNG
figures are drawn by figures.py, the placement section by placement.py. Every figure gets
one line: what it shows, which stack is better on it, and why. Any set of stacks: the
lines that explain pblk against AppNVM appear when both ran."""
from __future__ import annotations

from pathlib import Path

from ..stack import StackError, parse_mode
from . import figures, html, placement, sections
from .results import MEASURED, at, headline, runs_line, speed_line
from .results import stacks as _stacks
from .results import workloads as _workloads
from .stacks import describe


def _designs(results) -> bool:
    """pblk and AppNVM both ran: the sentences explaining their designs apply."""
    return {"pblk", "appnvm"} <= set(_stacks(results))


def _better(a, b, higher=True):
    """(winner index, ratio) of two values; None when not comparable."""
    if not a or not b:
        return None
    if (a > b) == higher:
        return 0, (a / b if higher else b / a)
    return 1, (b / a if higher else a / b)


def _best(vals: dict, higher=True):
    """(best, worst, ratio) over {stack: value}, values that are missing or 0 left out;
    None unless two stacks have one."""
    v = {s: x for s, x in vals.items() if x}
    if len(v) < 2:
        return None
    order = sorted(v, key=v.get, reverse=higher)
    a, b = v[order[0]], v[order[-1]]
    return order[0], order[-1], (a / b if higher else b / a)


def _cmp(results, key, higher=True, wl=None, qd=None, get=None):
    """(best, worst, ratio) of the stacks on one figure; None if not comparable."""
    vals = {}
    for s in _stacks(results):
        if get is not None:
            vals[s] = get(s)
        else:
            r = at(results, s, wl, qd) if qd is not None else headline(results, s, wl)
            vals[s] = r.get(key) if r else None
    return _best(vals, higher)


def _vs(results, c) -> str:
    """' (vs WORST)' when more than two stacks ran (with two, the other one is meant)."""
    return f" (vs {c[1]})" if len(_stacks(results)) > 2 else ""


def _fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


METRICS = [
    ("throughput_mib_s", "throughput (MiB/s, modeled)", 1),
    ("iops", "IOPS (modeled)", 0),
    ("lat_p50_us", "p50 latency (us, modeled)", 1),
    ("lat_p99_us", "p99 latency (us, modeled)", 1),
    ("lat_p999_us", "p99.9 latency (us, modeled)", 1),
    ("write_amplification", "write amplification", 2),
    ("host_cpu_s_per_gib", "host CPU s/GiB (measured)", 2),
    ("nvme_cmds_per_gib", "NVMe commands/GiB", 0),
    ("bus_bytes_per_gib", "bus bytes/GiB", 0),
    ("wall_s", "wall time (s)", 1),
]
QD_METRICS = [("throughput_mib_s", "MiB/s", 1), ("iops", "IOPS", 0), ("lat_p50_us", "p50 us", 1),
              ("lat_p99_us", "p99 us", 1), ("lat_p999_us", "p99.9 us", 1)]


# ---------------------------------------------------------------- text

def _kinds(results) -> dict:
    """{name: kind} of the stacks that ran: pblk, appnvm, ftl@host, ftl@device (None for a
    mode this version does not know: results written by another)."""
    modes = results.get("modes") or {}
    out = {}
    for n in results.get("params", {}):
        try:
            out[n] = parse_mode(modes.get(n, n)).kind
        except StackError:
            out[n] = None
    return out


def config_lines(results) -> list[str]:
    """The configuration the stacks and the device ran with, and what each FTL made of it."""
    c = results["config"]
    g, n, f, p, a, h = (c[k] for k in ("geometry", "nand", "ftl", "pblk", "appnvm", "host"))
    params, kinds = results.get("params", {}), _kinds(results)
    luns = g["nchannels"] * g["nluns"]
    out = [f"- geometry: {g['nchannels']} ch x {g['nluns']} LUN x {g['nblocks']} blk x {g['npages']} pg x "
           f"{g['nplanes']} pl x {g['nsectors']} sec x 4096 B ({luns} LUNs, {luns * g['nblocks']} blocks)"]
    nand = (f"- NAND: tR {n['t_read_ns'] / 1000:g} us, tPROG {n['t_prog_ns'] / 1000:g} us, "
            f"tBERS {n['t_erase_ns'] / 1000:g} us, channel {n['channel_mb_s']} MB/s")
    if any(n[k] for k in ("t_read_lsb_ns", "t_read_msb_ns", "t_prog_lsb_ns", "t_prog_msb_ns")):
        nand += (f"; LSB/MSB pages: read {(n['t_read_lsb_ns'] or n['t_read_ns']) / 1000:g}/"
                 f"{(n['t_read_msb_ns'] or n['t_read_ns']) / 1000:g} us, program "
                 f"{(n['t_prog_lsb_ns'] or n['t_prog_ns']) / 1000:g}/{(n['t_prog_msb_ns'] or n['t_prog_ns']) / 1000:g} us")
    out.append(nand)
    caps = "; ".join(f"{s} exports {pr['capacity_bytes']:,} bytes" for s, pr in params.items())
    out.append(f"- over-provisioning ftl.op = {f['op']:g}" + (f": {caps}" if caps else
                                                             f": {results.get('capacity_bytes', 0):,} bytes exported"))
    pol = f"{f['gc_policy']}" + (f" (d = {f['gc_d']})" if f["gc_policy"] == "d-choice" else "")
    if f["gc_policy"] in ("random", "d-choice"):
        pol += f", seed {f['gc_seed']}"
    out.append(f"- GC victim policy (pblk and AppNVM): {pol}; thresholds: background ftl.gc_background = "
               f"{f['gc_background']:g}, foreground ftl.gc_foreground = {f['gc_foreground']}")
    if "pblk" not in kinds.values():
        out.append(f"- pblk: write buffer {p['write_buffer_entries']} entries, rl_low_div {p['rl_low_div']}")
    if "appnvm" not in kinds.values():
        out.append(f"- AppNVM: {a['write_buffer_units_per_lun']} buffered units per LUN, wear levelling "
                   f"{a['wear_leveling']}")
    for s, pr in params.items():
        kind = kinds[s]
        if kind == "pblk":
            out.append(f"- {s}: write buffer {pr['write_buffer_entries']} entries; rate limiter high "
                       f"{pr['rl_high_sectors']:,} / low {pr['rl_low_sectors']:,} / GC reserve "
                       f"{pr['rl_reserve_sectors']:,} sectors (pblk.rl_low_div = {p['rl_low_div']}; lines of "
                       f"{pr['line_sectors']:,} sectors); durable discard {p['durable_discard']}")
        elif kind == "appnvm":
            out.append(f"- AppNVM: write buffer {pr['write_buffer_units']} units ({a['write_buffer_units_per_lun']} "
                       f"per LUN); GC reserve {pr['gc_reserve_blocks']} blocks, GC runs below "
                       f"{pr['gc_low_blocks']} free blocks; wear levelling {a['wear_leveling']}; checkpoint every "
                       f"{pr['checkpoint_every_units']} units")
        elif kind is None:
            out.append(f"- {s}: exports {pr['capacity_bytes']:,} bytes")
        else:
            rng = pr.get("lun_range")
            where = ("in the device" if kind != "ftl@host" else "in the host over zones" if rng is None
                     else f"in the host on LUNs {rng[0]}-{rng[1]}")
            out.append(f"- {s}: plug-in FTL {pr.get('ftl')!r} version {pr.get('ftl_version')} {where}; it "
                       f"chooses its own over-provisioning, GC and buffers (the [ftl], [pblk] and [appnvm] keys "
                       f"are not its): exports {pr['capacity_bytes']:,} bytes")
    out.append(f"- host cost model: {h['write_buffer_copy_ns']} ns per sector copied into pblk's buffer, "
               f"{h['gc_move_ns']} ns per sector pblk's GC moves, {h['submit_ns']} ns per NVMe command "
               f"submitted, {h['complete_ns']} ns per completion"
               + ("" if any(h.values()) else " (all 0: the clock of earlier versions)"))
    return out


def workload_notes(results, wl) -> list[str]:
    """What a fio workload's report must say besides its figures: the options ignored,
    the layout scaled, the jobs the request cap cut short (per stack where they differ),
    each stonewall group's own figures and the measured share of each zone."""
    d = results["workloads"][wl]
    out = list(d.get("notes", []))
    runs = {s: headline(results, s, wl) or {} for s in _stacks(results)}
    cuts = {s: tuple(r.get("cut", [])) for s, r in runs.items()}
    ramps = {s: tuple(r.get("ramp_cut", [])) for s, r in runs.items()}
    for what, got in (("", cuts), (" ramp", ramps)):
        for jobs in dict.fromkeys(got.values()):
            if not jobs:
                continue
            where = [s for s, j in got.items() if j == jobs]
            out.append(f"cut short{what}: the budget of {d.get('max_requests', 0):,} requests per job"
                       f"{' (--quick)' if results.get('plan') == 'quick' else ''} ended "
                       + ", ".join(jobs) + (f" on {', '.join(where)}" if len(where) < len(got) else "")
                       + " before their own end")
    for s, r in runs.items():
        phases = r.get("phases") or []
        if len(phases) > 1:
            out.append(f"{s}: stonewall groups in order: " + "; ".join(
                f"{i + 1}. {'+'.join(p['jobs'][:3])}{'...' if len(p['jobs']) > 3 else ''} "
                f"{p['throughput_mib_s']:,.1f} MiB/s, p99.9 {p['lat_p999_us']:,.1f} us, "
                f"WA {_fmt(p['write_amplification'], 2)}" for i, p in enumerate(phases)))
    for s, r in runs.items():
        agg: dict = {}                                  # (direction, zones asked) -> requests per zone
        for per in (r.get("zones") or {}).values():
            for dd, z in per.items():
                key = (dd, tuple(a for a, _ in z))
                agg[key] = [x + n for x, (_, n) in zip(agg.get(key, [0] * len(z)), z)]
        if agg:
            out.append(f"{s}: zoned accesses, % asked -> % measured over the run: " + "; ".join(
                f"{dd} " + ", ".join(f"{a}->{100 * n / max(1, sum(counts)):.1f}" for a, n in zip(asked, counts))
                for (dd, asked), counts in agg.items()))
    rmw = {s: (r.get("rmw_writes", 0), r.get("rmw_read_bytes", 0), r.get("partial_reads", 0)) for s, r in runs.items()}
    for counts in dict.fromkeys(rmw.values()):
        if any(counts):
            where = [s for s, c in rmw.items() if c == counts]
            out.append(f"{' and '.join(where)}: {counts[0]:,} writes of part of a 4 KiB sector served by "
                       f"read-modify-write ({counts[1]:,} bytes read first), {counts[2]:,} reads of part of one")
    return out


def table(results) -> str:
    """The console summary: config, headline figures per workload, QD curves, interference."""
    if "sweep" in results:
        return sweep_table(results)
    st = _stacks(results)
    lines = ["configuration:"] + ["  " + x[2:] for x in config_lines(results)]
    lines += ["preconditioning:"] + ["  " + x[2:].replace("**", "") for x in sections.precondition_lines(results)]
    for w in _workloads(results):
        notes = workload_notes(results, w)
        if notes:
            lines += [f"\n{w}:"] + [f"  {n}" for n in notes]
    nw = max([8] + [len(s) for s in st])                   # the longest stack name
    cw = max(16, nw + 2)
    for key, label, d in METRICS:
        lines.append(f"\n{label}")
        lines.append("  " + "workload@QD".ljust(18) + "".join(s.rjust(cw) for s in st))
        for w in _workloads(results):
            qd = results["workloads"][w]["qds"][0]
            lines.append("  " + f"{w}@{qd}".ljust(18) + "".join(
                _fmt((headline(results, s, w) or {}).get(key), d).rjust(cw) for s in st))
    for w in _workloads(results):
        qds = results["workloads"][w]["qds"]
        if len(qds) < 2:
            continue
        lines.append(f"\n{w} against queue depth")
        qw = max(17, nw + 8)
        lines.append("  " + "QD".ljust(5) + "".join(f"{s} {lab}".rjust(qw) for s in st for _, lab, _ in QD_METRICS[:1] + QD_METRICS[2:]))
        for qd in qds:
            lines.append("  " + str(qd).ljust(5) + "".join(
                _fmt((at(results, s, w, qd) or {}).get(k), d).rjust(qw) for s in st
                for k, _, d in QD_METRICS[:1] + QD_METRICS[2:]))
    if "interference" in _workloads(results):
        lines.append("\ninterference: 4 KiB read latency at QD 1, alone / beside a GC-heavy overwrite (us)")
        for s in st:
            r = headline(results, s, "interference")
            if r:
                i = r["idle"]
                lines.append(f"  {s:{nw}s} alone p50 {i['read_p50_us']:.1f} p99 {i['read_p99_us']:.1f} "
                             f"p99.9 {i['read_p999_us']:.1f} | under GC p50 {r['read_p50_us']:.1f} p99 "
                             f"{r['read_p99_us']:.1f} p99.9 {r['read_p999_us']:.1f} max {r['read_max_us']:.1f}; "
                             f"writer {r['writer']['throughput_mib_s']:.1f} MiB/s, WA {_fmt(r['write_amplification'], 2)}")
    wear = results.get("wear", {})
    if any(wear.values()):
        lines.append("\nwear at the end of the run (erase counts per block)")
        for s in st:
            for w, wr in wear.get(s, {}).items():
                lines.append(f"  {s:{nw}s} {w:14s} max {wr['erase_max']}, mean {wr['erase_mean']:.2f}, "
                             f"spread (max/mean) {_fmt(wr['wear_spread'], 2)}")
    lines += sections.steady_console(results) + sections.theory_console(results) + sections.tenants_console(results)
    lines += placement.console(results)
    return "\n".join(lines)


def sweep_table(results) -> str:
    sw = results["sweep"]
    st = list(sw["points"][0]["stacks"]) if sw["points"] else []
    lines = [f"sweep of {', '.join(sw['keys'])} ({sw['workload']} at QD {sw['qd']})"]
    head = "  " + "".join(k.rjust(16) for k in sw["keys"])
    for s in st:
        head += (f"{s} WA".rjust(14) + f"{s} steady".rjust(14) + f"{s} MiB/s".rjust(14) + f"{s} eff.OP".rjust(14)
                 + f"{s} FIFO cf".rjust(14))
    lines.append(head)
    for pt in sw["points"]:
        row = "  " + "".join(str(pt["set"][k]).rjust(16) for k in sw["keys"])
        for s in st:
            r = pt["stacks"][s]
            th = figures.point_theory(results, pt, s)
            eff = th.get("effective_op")
            row += (_fmt(r["write_amplification"], 2).rjust(14) + _fmt(r["steady_write_amplification"], 2).rjust(14)
                    + _fmt(r["throughput_mib_s"], 1).rjust(14)
                    + ("-" if eff is None else f"{100 * eff:.1f} %").rjust(14)
                    + _fmt(th.get("closed_form_wa"), 2).rjust(14))
        lines.append(row)
    limits = [" ".join(f"{k}={v}" for k, v in pt["set"].items()) + f" on {s}"
              for pt in sw["points"] for s, r in (pt.get("steady") or {}).items() if r and r.get("limit_hit")]
    if limits:
        lines.append("round limit hit (not steady state): " + "; ".join(limits))
    return "\n".join(lines)


def _md_table(results, key, d) -> str:
    st = _stacks(results)
    out = ["| workload | QD | " + " | ".join(st) + " |", "|---|---|" + "---|" * len(st)]
    for w in _workloads(results):
        qd = results["workloads"][w]["qds"][0]
        out.append(f"| {w} | {qd} | " + " | ".join(_fmt((headline(results, s, w) or {}).get(key), d) for s in st) + " |")
    return "\n".join(out)


HEADLINE = (("throughput_mib_s", "MiB/s", 1), ("lat_p999_us", "p99.9 us", 1), ("write_amplification", "WA", 2))


def _md_headline(results) -> str:
    """The headline table: every workload at its headline queue depth, throughput, p99.9
    and WA per stack (interference: the reader's p99.9 and the writer's figures)."""
    st = _stacks(results)
    out = ["| workload | QD | " + " | ".join(f"{s} {lab}" for s in st for _, lab, _ in HEADLINE) + " |",
           "|---|---|" + "---|" * (len(st) * len(HEADLINE))]
    for w in _workloads(results):
        cells = []
        for s in st:
            r = headline(results, s, w) or {}
            if w == "interference" and r:
                r = dict(r, throughput_mib_s=r["writer"]["throughput_mib_s"], lat_p999_us=r["read_p999_us"])
            cells += [_fmt(r.get(k), d) for k, _, d in HEADLINE]
        out.append(f"| {w} | {results['workloads'][w]['qds'][0]} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _md_qd_table(results, w) -> str:
    st = _stacks(results)
    cols = [(s, k, lab, d) for s in st for k, lab, d in QD_METRICS]
    out = ["| QD | " + " | ".join(f"{s} {lab}" for s, _, lab, _ in cols) + " |", "|---|" + "---|" * len(cols)]
    for qd in results["workloads"][w]["qds"]:
        out.append(f"| {qd} | " + " | ".join(_fmt((at(results, s, w, qd) or {}).get(k), d) for s, k, _, d in cols) + " |")
    return "\n".join(out)


# ---------------------------------------------------------------- one line per figure

def why(results) -> dict:
    """One line per figure: what it shows, which stack is better, and why. Where more
    than two stacks ran, the best is named against the worst; the sentences on pblk's and
    AppNVM's designs appear when both ran."""
    out = {}
    wls = _workloads(results)
    st_all = _stacks(results)

    def designs(text: str) -> str:
        return text if _designs(results) else ""

    def vs(c) -> str:
        return _vs(results, c)
    t = [(w, _cmp(results, "throughput_mib_s", wl=w)) for w in wls]
    parts = [f"{w}: {c[0]} {c[2]:.2f}x{vs(c)}" for w, c in t if c]
    out["throughput"] = ("Modeled throughput per workload at its headline queue depth (bytes over virtual "
                         "time, host costs included). Faster: " + (", ".join(parts) or "-") + ". "
                         + designs("pblk acknowledges writes from its host buffer and stripes whole 32 KiB units "
                                   "over all LUNs; AppNVM buffers only a few units per LUN in the device, so "
                                   "bursts wait for programs sooner; ")
                         + "reads cost the same media time on every stack.")
    qdw = [w for w in wls if len(results["workloads"][w]["qds"]) > 1]
    if qdw:
        lines = []
        for w in qdw:
            qds = results["workloads"][w]["qds"]
            for s in st_all:
                lo, hi = at(results, s, w, qds[0]), at(results, s, w, qds[-1])
                if lo and hi and lo["throughput_mib_s"]:
                    lines.append(f"{s} {w} x{hi['throughput_mib_s'] / lo['throughput_mib_s']:.1f}")
        c = _cmp(results, "throughput_mib_s", wl="randread", qd=results["workloads"].get("randread", {}).get("qds", [0])[-1]) \
            if "randread" in qdw else None
        out["qd_throughput"] = (f"Throughput against queue depth, QD {results['workloads'][qdw[0]]['qds'][0]} to "
                                f"{results['workloads'][qdw[0]]['qds'][-1]} (gain: {', '.join(lines)}). More requests "
                                "in flight keep more LUNs and channels busy at once until the channels saturate; "
                                + (f"at the deepest queue {c[0]} reads {c[2]:.2f}x faster{vs(c)}. "
                                   if c and c[2] >= 1.02 else "reads scale alike on every stack. ")
                                + designs("pblk's writes do not gain from depth: each is a copy into the host "
                                          "buffer, and the buffer, not the queue, decides when the NAND is busy; "
                                          "AppNVM's gain until its per-LUN device buffer is full."))
        d = _cmp(results, "lat_p999_us", higher=False, wl=qdw[0], qd=results["workloads"][qdw[0]]["qds"][-1])
        out["qd_latency"] = ("p50 / p99 / p99.9 latency against queue depth (log scale): latency grows with the "
                             "queue once requests wait for busy LUNs and channels; "
                             + (f"at the deepest {qdw[0]} queue {d[0]}'s p99.9 is {d[2]:.2f}x lower{vs(d)}. "
                                if d else "")
                             + designs("Writes: pblk's stay at the buffer copy cost until its buffer fills, "
                                       "AppNVM's wait for a device buffer slot after a few units per LUN."))
    r = _cmp(results, "lat_p50_us", higher=False, wl="randread") if "randread" in wls else None
    out["latency"] = ("Latency CDFs per workload at the headline queue depth (modeled). "
                      + ((f"Random-read median: {r[0]} lower by {r[2]:.2f}x{vs(r)}; " if r[2] >= 1.02 else
                          "Random-read median: the same for all; ") if r else "")
                      + "reads cost tR + one page transfer plus the host's per-command time; buffered writes "
                        "show a step at the copy cost and a tail at tPROG where the buffer has to drain.")
    if "interference" in wls:
        c = _cmp(results, "read_p999_us", higher=False, wl="interference")
        vals = {s: (headline(results, s, "interference") or {}).get("read_p999_us") for s in st_all}
        idle = {s: (headline(results, s, "interference") or {}).get("idle", {}).get("read_p999_us")
                for s in st_all}
        out["interference"] = ("Read latency at QD 1 alone and beside a GC-heavy 64 KiB overwrite at QD 8 "
                               "(p99.9 alone -> under GC: " + ", ".join(
                                   f"{s} {_fmt(idle[s])} -> {_fmt(vals[s])} us" for s in vals) + "). "
                               + (f"{c[0]} keeps the tail {c[2]:.2f}x shorter{vs(c)}. " if c else "")
                               + "A read waits behind whatever its LUN has queued -- programs (tPROG), erases "
                                 "(tBERS), GC's reads and copies. "
                               + designs("pblk's GC data goes through its write buffer and is striped over all "
                                         "LUNs like user data, so every LUN carries a bounded share (the buffer "
                                         "caps what is in flight); AppNVM collects whole victims inside the write "
                                         "command and programs them into its one open GC block, so the LUN "
                                         "holding it is busy for long runs and reads that land there wait."))
    ov = "overwrite" if "overwrite" in wls else None
    if ov:
        c = _cmp(results, "write_amplification", higher=False, wl=ov)
        st = {s: (headline(results, s, ov) or {}).get("steady_write_amplification") for s in st_all}
        g = results["geometry"]
        luns = g["nchannels"] * g["nluns"]
        reason = {
            "appnvm": (f"with the same spare space pblk reclaims whole lines ({luns} blocks, one per LUN, at "
                       "once) and keeps 1/8 of its space free for the rate limiter, while AppNVM picks single "
                       "blocks and runs GC only a few blocks above its reserve, so AppNVM's victims are "
                       "emptier; pblk also writes smeta/emeta per line."),
            "pblk": ("pblk's line-wide victims and rate limiter beat AppNVM's per-block GC here, which also "
                     "pays for its map checkpoints."),
        }
        why_ = designs(reason.get(c[0], "")) if c and {c[0], c[1]} <= {"pblk", "appnvm"} else \
            ("plug-in FTLs keep their own spare space (see the configuration)." if c else "")
        out["wa"] = ("Write amplification during the 2x-capacity random overwrite, per interval and "
                     "cumulative; steady state (second half): "
                     + ", ".join(f"{s} {_fmt(v, 2)}" for s, v in st.items()) + ". "
                     + (f"{c[0]} amplifies least ({c[2]:.2f}x lower"
                        + (f" than {c[1]}" if len(st_all) > 2 else "") + f"): {why_}" if c else ""))
        out["gc"] = ("GC sectors moved per host sector written during the overwrite: zero while free space "
                     "lasts, then a steady state (a plug-in FTL appears when its stats() report gc_sectors); "
                     + (f"{c[0]} copies less per user byte, the same cause as its lower WA." if c else
                        "the lower curve copies less per user byte."))
    wear = results.get("wear", {})
    if any(wear.values()):
        spread = {s: next(iter(v.values()))["wear_spread"] for s, v in wear.items() if v}
        c = _best(spread, higher=False)
        wl_ = results["config"]["appnvm"]["wear_leveling"]
        out["erase"] = ("Erase count per block (LUN x block) at the end of the overwrite; wear spread max/mean: "
                        + ", ".join(f"{s} {_fmt(v, 2)}" for s, v in spread.items()) + ". "
                        + (f"{c[0]} wears most evenly. " if c else "")
                        + designs("pblk erases whole lines, so every LUN of a line ages alike and blocks differ "
                                  "only line by line; AppNVM frees and reuses single blocks"
                                  + (" and, with dynamic wear levelling, takes the least-erased free block first."
                                     if wl_ == "dynamic" else " in list order (appnvm.wear_leveling = none).")))
        cheap = {}
        for s_, v in wear.items():
            if v:
                w_ = next(iter(v.values()))
                if w_["valid"] is None:
                    continue                    # the FTL keeps its map to itself
                cells = [x for row in w_["valid"] for x in row]
                cheap[s_] = sum(1 for x in cells if x < w_["sectors_per_block"] // 4) / max(1, len(cells))
        cb = _best(cheap, higher=True)
        mute = [s_ for s_, v in wear.items() if v and s_ not in cheap]
        out["valid"] = ("Valid sectors per block at the end of the overwrite (dark: little to keep, a cheap "
                        "victim); blocks holding under a quarter of their sectors (free ones included): "
                        + ", ".join(f"{s_} {100 * v:.1f} %" for s_, v in cheap.items()) + ". "
                        + (f"{cb[0]} leaves the most cheap victims. " if cb else "")
                        + designs("pblk's map is striped, so a line's blocks hold about the same valid count and "
                                  "the picture has vertical bands, one per line; AppNVM's blocks fill and empty "
                                  "one by one, so valid counts vary block by block -- the spread greedy GC feeds "
                                  "on. ")
                        + (f"Not shown: {', '.join(mute)} (a plug-in FTL keeps its map to itself)." if mute else ""))
    fob = results.get("fob") or {}
    if fob:
        mode = (results.get("precondition") or {}).get("mode", "steady")
        drops = []
        for s in st_all:
            for w in wls:
                f, h = (fob.get(s) or {}).get(w), headline(results, s, w)
                if f and h and f.get("throughput_mib_s") and w != "interference":
                    drops.append((h["throughput_mib_s"] / f["throughput_mib_s"], s, w))
        low = min(drops) if drops else None
        out["fob_steady"] = (f"Every workload fresh out of the box (hatched) and {mode}: throughput and p99.9 "
                             "latency. A fresh device has free blocks everywhere, so GC has nothing to do and "
                             "writes run at program speed; once the device is full, every write pays for GC "
                             "moves. " + (f"The largest drop: {low[2]} on {low[1]}, {mode} at "
                                          f"{100 * low[0]:.0f} % of its fresh-out-of-box throughput." if low else ""))
    cp = _cmp(results, "host_cpu_s_per_gib", higher=False, wl="randwrite") if "randwrite" in wls else None
    out["cpu"] = ("Host CPU seconds per GiB, measured in this process minus the device's own CPU time (Python "
                  "speed, not a model). "
                  + (f"{cp[0]} costs the host {cp[2]:.2f}x less on random writes{vs(cp)}. " if cp else "")
                  + "An FTL in the host does mapping, buffering and GC on the host's CPU; one in the device "
                    "leaves the host only the commands. "
                  + designs("pblk also batches 4 KiB writes into 32 KiB units; AppNVM sends every request "
                            "over the bus."))
    n = _cmp(results, "nvme_cmds_per_gib", higher=False, wl="randwrite") if "randwrite" in wls else None
    out["cmds"] = ("NVMe commands per GiB of user data (log scale). "
                   + (f"{n[0]} needs {n[2]:.2f}x fewer commands on random writes{vs(n)}. " if n else "")
                   + "A host-side FTL sends the media's operations (reads, programs, erases, its GC's too) "
                     "as commands; a device-side one gets one command per request. "
                   + designs("pblk batches buffered 4 KiB writes into 32 KiB units and up to 64 addresses per "
                             "command, AppNVM sends one command per request; for reads both send one per request."))
    gcw = "overwrite" if "overwrite" in wls else None
    b = _cmp(results, "bus_bytes_per_gib", higher=False, wl=gcw) if gcw else None
    out["bus"] = ("Bus (DMA) bytes per GiB of user data (log scale): about 1 GiB wherever no GC runs. "
                  + (f"Under the sustained overwrite {b[0]} moves {b[2]:.2f}x fewer bytes over the bus{vs(b)}. "
                     if b else "")
                  + "A host-side FTL's GC reads every valid sector to the host and writes it back (twice across "
                    "the bus per sector moved); a device-side FTL's GC copies inside the device.")
    return out


FIGURES = [("throughput.png", "throughput"), ("qd_throughput.png", "qd_throughput"),
           ("qd_latency.png", "qd_latency"), ("latency_cdf.png", "latency"), ("interference.png", "interference"),
           ("wa_over_time.png", "wa"), ("gc_activity.png", "gc"), ("heatmap_erase.png", "erase"),
           ("heatmap_valid.png", "valid"), ("cpu_per_gib.png", "cpu"), ("cmds_per_gib.png", "cmds"),
           ("bus_per_gib.png", "bus")]


def write(results, outdir) -> None:
    """report.md, the PNG figures and report.html (the same report, figures inline)."""
    outdir = Path(outdir)
    if "sweep" in results:
        _write_sweep(results, outdir)
        return
    made = figures.draw(results, outdir)
    lines = why(results)
    st = _stacks(results)
    md = [f"# ox compare -- {results['plan']} run", "",
          sections.intro(results) + ": every figure but host CPU and wall time is modeled on the virtual clock, "
          f"reproducible for the same configuration and seed (seed {results['seed']}). Requests of a workload "
          "are issued at their queue depth in virtual time; writes carry (LBA, generation) stamps and every "
          "read is checked against them.", "",
          "Stacks: " + "; ".join(f"**{s}** = {describe(results.get('modes', {}).get(s, s))}" for s in st), "",
          f"Wall time of the run: {results['wall_s']:.0f} s; {speed_line(results)}.", "", "## Headline figures", "",
          _md_headline(results), "", "## Preconditioning", ""]
    md += sections.precondition_lines(results) + ["", "## Configuration", ""]
    md += config_lines(results) + [""]
    md += sections.theory_section(results)
    md += ["## Workloads", ""]
    for w, d in results["workloads"].items():
        md.append(f"- **{w}** ({', '.join('QD ' + str(q) for q in d['qds'])}): {d['title']}")
        md += [f"  - {n}" for n in workload_notes(results, w)]
    md.append("")
    for key, label, d in METRICS:
        md += [f"## {label}", "", _md_table(results, key, d), ""]
    for w in _workloads(results):
        if len(results["workloads"][w]["qds"]) > 1:
            md += [f"## {w} against queue depth", "", _md_qd_table(results, w), ""]
    md += sections.steady_section(results, made, lines)
    md += sections.tenants_section(results, made)
    mism = sum(r["mismatches"] for s in results["stacks"].values() for qd in s.values() for r in qd.values())
    reads = sum(r["verified_reads"] for s in results["stacks"].values() for qd in s.values() for r in qd.values())
    md += ["## Data check", "", f"{reads:,} reads verified against the written stamps, {mism} mismatches.", ""]
    md += placement.section(results, outdir)
    md += ["## Figures", ""]
    for png, key in FIGURES:
        if png in made and key in lines:
            md += [f"![{png}]({png})", "", lines[key], ""]
    md += ["## Fields", "", "results.json: `stacks.<stack>.<workload>.<QD>` holds the figures of one run; "
           "`modes.<stack>` the stack mode the name stands for, `params.<stack>` what its FTL made of the "
           "configuration; `precondition` how the devices were prepared, `steady.<stack>.<workload>` the rounds "
           "(tracked values, window, verdict), `fob.<stack>.<workload>` the fresh-out-of-box figures beside them, "
           "`theory.<stack>` effective over-provisioning and the closed-form WA; a run's `jobs` holds each tenant's "
           "figures and `fairness` Jain's index per group; wall-clock figures "
           f"({', '.join(MEASURED)}) are measured, everything else modeled.", ""]
    md += sections.config_section(results)
    text = "\n".join(md)
    (outdir / "report.md").write_text(text)
    html.write(text, outdir, title=f"ox compare -- {results['plan']} run")


def _write_sweep(results, outdir: Path) -> None:
    made = figures.draw_sweep(results, outdir)
    sw = results["sweep"]
    runs = [r for pt in sw["points"] for r in (pt.get("steady") or {}).values() if r]
    mode = runs[0]["precondition"] if runs else "none"
    state = {"none": "on fresh devices", "fill": "after a fill of twice the capacity (one round)",
             "steady": "in steady state (SNIA PTS: twice the capacity in 128 KiB sequential writes, then rounds "
                       "until five hold within 20 % and a fitted slope of 10 %)"}[mode]
    title = f"ox compare -- sweep of {', '.join(sw['keys'])}"
    md = [f"# {title}", "",
          f"The {sw['workload']} workload ({sw['title']}) at QD {sw['qd']} {state} at every point of "
          f"the grid, seed {results['seed']}. Wall time {results['wall_s']:.0f} s; {runs_line(results)}; "
          f"{speed_line(results)}. eff.OP: each FTL's effective over-provisioning at the point; FIFO cf: "
          "Desnoyers' closed-form WA for FIFO cleaning at it (greedy moves no more).", "",
          "## Base configuration", ""]
    base = dict(results, params={})
    md += config_lines(base) + ["", "## Results", "", "```", sweep_table(results), "```", ""]
    if runs:
        md += ["Rounds per point: " + "; ".join(
            " ".join(f"{k}={v}" for k, v in pt["set"].items()) + " " + ", ".join(
                f"{s} {sections.verdict(r)}" for s, r in (pt.get("steady") or {}).items() if r)
            for pt in sw["points"]) + ".", ""]
    if "sweep.png" in made:
        md += ["![sweep.png](sweep.png)", "", figures.sweep_caption(results), ""]
    md += sections.config_section(results)
    text = "\n".join(md)
    (outdir / "report.md").write_text(text)
    html.write(text, outdir, title=title)
