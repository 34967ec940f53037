"""The report's sections on how its figures were taken and what checks them: the
preconditioning and the way to steady state (SNIA PTS), fresh-out-of-box figures beside
steady ones, over-provisioning against Desnoyers' closed form, tenants and their
fairness, and the whole configuration. Markdown lines for report.md (and report.html)
and short lines for the console; report.py puts them in order."""
from __future__ import annotations

from . import figures, steady
from .results import headline
from .results import stacks as _stacks

TRACKED = {"throughput_mib_s": "throughput", "write_amplification": "write amplification",
           "writer.throughput_mib_s": "the writer's throughput"}
FEW_UNITS = 64          # below this many GC units the closed form is a rough guide only


def _fmt(v, digits=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _pre(results) -> dict:
    return results.get("precondition") or {"mode": "none", "plan_default": True}


def _steady(results) -> dict:
    return results.get("steady") or {}


# ---------------------------------------------------------------- preconditioning

def intro(results) -> str:
    """The report's first sentence on the state of the devices."""
    mode = _pre(results)["mode"]
    if mode == "none":
        return ("The stacks run the same workloads on fresh devices (fresh out of the box, no preconditioning) "
                "with the NAND timing model on")
    what = "steady state (SNIA PTS)" if mode == "steady" else "one round after the fill"
    return ("Each workload runs on a device first written twice over in 128 KiB sequential writes and is "
            f"measured in {what}, with the NAND timing model on")


def precondition_lines(results) -> list[str]:
    """How every figure was preconditioned, and what each workload's rounds came to: a
    round limit hit is said in so many words."""
    pre = _pre(results)
    mode = pre["mode"]
    quick = results.get("plan") == "quick"
    out = []
    if mode == "none":
        out.append("- **none**: every figure is fresh out of the box (FOB) -- a new device for each workload and "
                   "queue depth, after the workload's own prefill, so GC has had little or nothing to do. "
                   + ("This is the quick run's default (a quick run takes seconds); `--precondition steady` gives "
                      "SNIA PTS steady-state figures, the full run's default." if quick and pre.get("plan_default")
                      else "Asked for with `--precondition none`; the full run's default is steady."))
        return out
    wipc = (f"twice the capacity in {pre.get('wipc_bs', steady.WIPC_BS) // 1024} KiB sequential writes "
            "(SNIA PTS's workload-independent preconditioning)")
    if mode == "fill":
        out.append(f"- **fill**: {wipc}, then one round of the workload (each queue depth once); not checked for "
                   "steady state. Fresh-out-of-box figures beside them.")
    else:
        out.append(f"- **steady** (SNIA PTS): {wipc}, then the workload in rounds -- each queue depth once per "
                   f"round -- until a window of {pre.get('window', steady.WINDOW)} rounds holds: the tracked "
                   f"variable at the headline queue depth stays within max - min <= "
                   f"{100 * pre.get('excursion', steady.EXCURSION):.0f} % of the window's average and its "
                   f"least-squares line rises or falls by <= {100 * pre.get('slope_excursion', steady.SLOPE_EXCURSION):.0f}"
                   f" % of it over the window; at most {pre.get('max_rounds', steady.MAX_ROUNDS)} rounds. Every "
                   "figure is taken over the window (latency over all its requests). Tracked: throughput; write "
                   "amplification for the overwrite; the writer's throughput for interference. The overwrite and "
                   "interference rounds write a quarter of the capacity each. Fresh-out-of-box figures beside them.")
    limits = []
    for s, wls in _steady(results).items():
        for w, r in wls.items():
            if r.get("limit_hit"):
                limits.append(f"{w} on {s}")
    if limits:
        out.append(f"- **round limit hit**: {', '.join(limits)} ran the full "
                   f"{pre.get('max_rounds', steady.MAX_ROUNDS)} rounds without the window holding; their figures "
                   "are from the last rounds and are NOT steady state (raise `--max-rounds`).")
    return out


def verdict(r: dict) -> str:
    """What one workload's rounds came to, in words."""
    a, b = r["window"]
    if r.get("precondition") == "fill":
        return "one round after the fill"
    if r["reached"]:
        return f"steady at round {b} (window {a}-{b})"
    if r.get("limit_hit"):
        return f"ROUND LIMIT {r['max_rounds']} hit: not steady (rounds {a}-{b} reported)"
    return f"not steady after {r['rounds']} rounds (rounds {a}-{b} reported)"


_SIDE = (("throughput_mib_s", "MiB/s", 1), ("lat_p999_us", "p99.9 us", 1), ("write_amplification", "WA", 2))


def steady_section(results, made: set, why: dict) -> list[str]:
    """Fresh-out-of-box and preconditioned figures side by side, the rounds each workload
    took and its convergence figure."""
    st = _steady(results)
    if not st:
        return []
    mode = _pre(results)["mode"]
    fob = results.get("fob") or {}
    out = [f"## Fresh out of the box and {mode}", "",
           f"Each workload's headline queue depth fresh out of the box (a new device) and {mode}; rounds to steady "
           "state and the window the figures come from.", ""]
    head = "| workload | stack | " + " | ".join(f"{lab} FOB | {lab} {mode}" for _, lab, _ in _SIDE) + " | rounds | state |"
    out += [head, "|" + "---|" * (4 + 2 * len(_SIDE))]
    for w in results["workloads"]:
        for s in _stacks(results):
            r = st.get(s, {}).get(w)
            if r is None:
                continue
            f = figures.side_figures(fob.get(s, {}).get(w), w)
            h = figures.side_figures(headline(results, s, w), w)
            cells = " | ".join(f"{_fmt(f.get(k), d)} | {_fmt(h.get(k), d)}" for k, _, d in _SIDE)
            out.append(f"| {w} | {s} | {cells} | {r['rounds']} | {verdict(r)} |")
    out += ["", "Interference: the writer's MiB/s and the reader's p99.9.", ""]
    if "fob_steady.png" in made:
        out += ["![fob_steady.png](fob_steady.png)", "", why.get("fob_steady", ""), ""]
    for w in results["workloads"]:
        png = figures.convergence_name(w)
        if png in made:
            out += [f"![{png}]({png})", "", convergence_line(results, w), ""]
    return out


def convergence_line(results, wl: str) -> str:
    parts = []
    track = results["workloads"][wl].get("track", "throughput_mib_s")
    for s, wls in _steady(results).items():
        r = wls.get(wl)
        if r:
            v = r["values"]
            parts.append(f"{s} {_fmt(v[0], 2)} in round 1 -> {_fmt(r.get('average'), 2)} over its window, "
                         f"{verdict(r)}")
    return (f"{wl}: {TRACKED.get(track, track)} per round after the preconditioning ({'; '.join(parts)}); "
            "shaded: the measurement window, dotted: +/-10 % of its average, dashed: fresh out of the box. The "
            "first rounds after a sequential fill are fast while GC finds whole victims; the window closes once "
            "GC's share settles.")


def steady_console(results) -> list[str]:
    out = []
    for s, wls in _steady(results).items():
        for w, r in wls.items():
            out.append(f"  {s:10s} {w:14s} {verdict(r)}")
    return (["\npreconditioning: " + _pre(results)["mode"]] + out) if out else []


# ---------------------------------------------------------------- theory

def theory_rows(results) -> list[dict]:
    th = figures.theory_of(results)
    out = []
    for s in _stacks(results):
        t = th.get(s)
        if t is None:
            continue
        ov = headline(results, s, "overwrite") or {}
        policy = (results.get("params", {}).get(s) or {}).get("gc_policy") or "-"
        out.append(dict(stack=s, t=t, policy=policy, wa=ov.get("steady_write_amplification"),
                        gc_wa=ov.get("gc_write_amplification")))
    return out


def theory_section(results) -> list[str]:
    """Each FTL's effective over-provisioning beside the knob, and Desnoyers' closed form
    for FIFO cleaning at it beside the measured write amplification."""
    rows = theory_rows(results)
    if not rows:
        return []
    knob = results["config"]["ftl"]["op"]
    out = ["## Over-provisioning against theory", "",
           f"`ftl.op = {knob:g}` keeps that fraction of the raw blocks from the exported capacity; GC sees less: "
           "its free-space thresholds, metadata and open blocks come out of it. The effective OP is the physical "
           "space GC can fill with data and garbage in steady state beyond the exported capacity, over the "
           "exported capacity (docs/compare.md gives each FTL's rule). The closed form is Desnoyers' (SYSTOR'12) "
           "for FIFO cleaning under uniform random overwrite: the victim's valid fraction X solves "
           "X = exp(-(1 - X) / alpha), alpha = exported / physical = 1 / (1 + OP), WA = 1 / (1 - X); greedy "
           "cleaning moves no more. Measured: the overwrite's steady write amplification (media bytes) and the "
           "part GC alone makes ((host + moved) / host sectors), which is what the closed form predicts.", "",
           "| stack | ftl.op | raw spare | effective OP | GC units | closed-form WA at raw spare | closed-form WA "
           "at effective OP | measured WA | GC-only WA | GC policy |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    few = []
    for r in rows:
        t = r["t"]
        units = f"{t['gc_units']} {t['gc_unit']}" if t.get("gc_units") else "-"
        if t.get("gc_units") and t["gc_units"] < FEW_UNITS:
            few.append(f"{r['stack']} ({units})")
        out.append(f"| {r['stack']} | {knob:g} | {_pct(t['raw_op'])} | {_pct(t['effective_op'])} | {units} | "
                   f"{_fmt(t['closed_form_wa_raw'], 2)} | {_fmt(t['closed_form_wa'], 2)} | {_fmt(r['wa'], 2)} | "
                   f"{_fmt(r['gc_wa'], 2)} | {r['policy']} |")
    out.append("")
    notes = []
    for r in rows:
        cf, m = r["t"].get("closed_form_wa"), r["gc_wa"]
        if cf and m:
            rel = m / cf - 1
            word = "above" if rel > 0 else "below"
            notes.append(f"{r['stack']} ({r['policy']}) {abs(100 * rel):.1f} % {word} it")
        elif r["t"].get("effective_op") is not None and r["t"]["effective_op"] <= 0:
            notes.append(f"{r['stack']}: no effective spare left at this setting (the closed form diverges)")
    if notes:
        out += ["Measured GC-only WA against the closed form at the effective OP: " + "; ".join(notes)
                + ". FIFO should land on it, greedy and cost-benefit below it."
                + (f" Few GC units: {', '.join(few)} -- the closed form assumes many, so take it as a rough "
                   "guide there." if few else ""), ""]
    elif few:
        out += [f"Few GC units: {', '.join(few)} -- the closed form assumes many, so take it as a rough guide "
                "there.", ""]
    return out


def theory_console(results) -> list[str]:
    rows = theory_rows(results)
    if not rows:
        return []
    out = [f"\nover-provisioning: ftl.op {results['config']['ftl']['op']:g}; effective OP and FIFO closed-form WA"]
    for r in rows:
        t = r["t"]
        out.append(f"  {r['stack']:10s} effective OP {_pct(t['effective_op'])} (raw spare {_pct(t['raw_op'])}), "
                   f"closed form {_fmt(t['closed_form_wa'], 2)}; measured WA {_fmt(r['wa'], 2)}, GC-only "
                   f"{_fmt(r['gc_wa'], 2)} ({r['policy']})")
    return out


# ---------------------------------------------------------------- tenants

def tenant_workloads(results) -> list[str]:
    return [w for w in results["workloads"]
            if any((headline(results, s, w) or {}).get("fairness") for s in _stacks(results))]


def _stall(j) -> str:
    s = j.get("stalls")
    if not s:
        return "-"
    return f"{s['count']:,} ({100 * s['share']:.1f} %, {s['over_s'] * 1000:,.1f} ms)"


def tenants_section(results, made: set) -> list[str]:
    """Per-tenant tables, fairness, and the tenants' figures (the noisy neighbour for the
    interference workload)."""
    wls = tenant_workloads(results)
    if not wls:
        return []
    out = ["## Tenants", "",
           "Jobs that run at once share the drive as tenants. MiB/s is over the run (the tenants add up to the "
           "total); 'of demand' is the tenant's rate while it ran over its rate alone -- each tenant is run by "
           "itself on the same device right after the group (beside fresh-out-of-box figures the device has "
           "aged by the group's writes; in steady state it is steady). WA share: the media bytes programmed in "
           "each sampling interval charged to the tenants by the bytes each wrote in it. GC stalls: requests "
           "that completed while GC was moving data and took longer than the tenant's own p99 alone (count, "
           "share, time beyond that bound). Jain's index over the shares of demand: 1.0 when every tenant got "
           "the same share, 1/n when one got everything.", ""]
    for w in wls:
        out += [f"### {w}", "",
                "| stack | tenant | QD | MiB/s | of demand | p50 us | p99 us | p99.9 us | p99.9 alone us | WA share "
                "| GC stalls |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        jains = []
        for s in _stacks(results):
            h = headline(results, s, w) or {}
            if not h.get("fairness"):
                continue
            for name, j in h["jobs"].items():
                out.append(f"| {s} | {name} | {j['qd']} | {_fmt(j['throughput_mib_s'])} | {_pct(j.get('normalised'))} "
                           f"| {_fmt(j['lat_p50_us'])} | {_fmt(j['lat_p99_us'])} | {_fmt(j['lat_p999_us'])} | "
                           f"{_fmt((j.get('alone') or {}).get('lat_p999_us'))} | {_pct(j.get('wa_share'))} | "
                           f"{_stall(j)} |")
            jains.append(f"{s} {figures.jain_text(results, s, w)}")
        out += ["", "Jain's index: " + "; ".join(jains) + ".", ""]
        png = "noisy_neighbour.png" if w == "interference" else figures.tenants_name(w)
        if png in made:
            out += [f"![{png}]({png})", "", tenants_line(results, w), ""]
    return out


def tenants_line(results, wl: str) -> str:
    if wl == "interference":
        vals = []
        for s in _stacks(results):
            r = headline(results, s, "interference")
            if r and "idle" in r:
                vals.append(f"{s} {_fmt(r['idle']['read_p999_us'], 0)} -> {_fmt(r['read_p999_us'], 0)} us "
                            f"(x{r['read_p999_us'] / max(r['idle']['read_p999_us'], 1e-9):,.0f})")
        return ("Noisy neighbour: a latency-sensitive 4 KiB reader at QD 1 alone and beside a write-heavy "
                "tenant (64 KiB random overwrite at QD 8): p99.9 " + "; ".join(vals) + ". The reader waits behind "
                "the programs, erases and GC copies its LUN has queued; a stack that spreads GC over every LUN "
                "bounds the wait, one that collects whole blocks on one LUN makes the reads there wait long.")
    return (f"{wl}: each tenant's throughput as a share of its demand (its rate alone), and its p99.9 alone "
            "(hatched) and together; Jain's index per stack in the legend.")


def tenants_console(results) -> list[str]:
    out = []
    for w in tenant_workloads(results):
        out.append(f"\ntenants of {w}: MiB/s, share of demand, p99.9 us (alone), WA share")
        for s in _stacks(results):
            h = headline(results, s, w) or {}
            for name, j in h.get("jobs", {}).items():
                out.append(f"  {s:10s} {name:14s} {_fmt(j['throughput_mib_s']):>10s} {_pct(j.get('normalised')):>8s} "
                           f"{_fmt(j['lat_p999_us']):>12s} ({_fmt((j.get('alone') or {}).get('lat_p999_us'))}) "
                           f"{_pct(j.get('wa_share'))}")
            if h.get("fairness"):
                out.append(f"  {s:10s} Jain's index {figures.jain_text(results, s, w)}")
    return out


# ---------------------------------------------------------------- the whole configuration

def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(v)


def config_toml(config: dict) -> list[str]:
    """The whole configuration as TOML (what --config FILE takes back)."""
    out = []
    for section, keys in config.items():
        out.append(f"[{section}]")
        out += [f"{k} = {_toml(v)}" for k, v in keys.items()]
        out.append("")
    return out


def config_section(results) -> list[str]:
    return ["## The whole configuration", "",
            "Every key the run used (`--config FILE` takes this back):", "", "```toml",
            *config_toml(results["config"]), "```", ""]


__all__ = ["config_section", "config_toml", "intro", "precondition_lines", "steady_console", "steady_section",
           "tenants_console", "tenants_section", "theory_console", "theory_section", "verdict"]
