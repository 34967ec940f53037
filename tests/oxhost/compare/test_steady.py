"""Steady state per SNIA PTS: the window test itself, a workload whose figure drifts after
the preconditioning reported only once the five-round window holds, and a round limit
reported as such -- in results.json, report.md and on the console. About 25 s."""
import json

import pytest
from click.testing import CliRunner

from oxhost.cli import main
from oxhost.compare import Plan, steady
from oxhost.compare.report import table, write
from oxhost.compare.runner import plan_work, run_one, run_plan, work
from oxhost.config import Config

from .test_fio_runs import Bar

TINY = ["geometry.nblocks=16", "geometry.npages=16"]         # 2x2x16x16 under --quick


def test_window_holds_within_20_percent_and_a_10_percent_slope():
    assert steady.check([100, 101, 99, 100, 100]).holds
    flat = steady.check([100, 120, 100, 120, 100])             # no slope, 20 % excursion: the edge holds
    assert flat.excursion == pytest.approx(0.2 / 1.08, rel=1e-9) and flat.holds
    wide = steady.check([90, 115, 90, 115, 90])                 # 25 / 100 = 25 % excursion
    assert wide.excursion == pytest.approx(0.25) and not wide.holds
    ramp = steady.check([100, 104, 108, 112, 116])              # 14.8 % excursion, but a slope of 14.8 %
    assert ramp.excursion < 0.2 and ramp.slope_excursion == pytest.approx(16 / 108) and not ramp.holds
    assert steady.check([100, None, 100, 100, 100]) is None and steady.check([0, 0, 0, 0, 0]) is None


def test_steady_round_is_the_first_that_closes_a_window():
    vals = [300, 200, 150, 120, 110, 105, 104, 103, 104, 103]
    end = steady.steady_round(vals)
    assert end == 9 and steady.check(vals[4:9]).holds
    assert not steady.check(vals[3:8]).holds                   # within 20 %, but still falling 15 %
    assert not any(steady.check(vals[e - 5:e]).holds for e in range(5, 9))
    v = steady.verdict(vals[:9], max_rounds=25)
    assert v["reached"] and v["window"] == [5, 9] and not v["limit_hit"]
    cut = steady.verdict(vals[:6], max_rounds=6)
    assert not cut["reached"] and cut["limit_hit"] and cut["window"] == [2, 6]


def _plan(names, **kw):
    plan = Plan.quick(Config.load(None, TINY), qds=(1,), precondition="steady", **kw)
    return plan.with_workloads([w for w in plan.workloads if w.name in names])


@pytest.fixture(scope="module")
def drifting():
    """Random 4 KiB writes after a sequential fill: GC finds whole victims at first, so
    the first round is far faster than the rest."""
    return run_plan(_plan(["randwrite"]))


@pytest.mark.parametrize("precondition", ["none", "fill"])
def test_the_progress_bar_of_every_builtin_workload_ends_at_its_total(precondition):
    """A round runs on the device as it is (no prefill); the fresh run beside a
    preconditioned one prefills; the interference workload counts its prefill once."""
    plan = Plan.quick(Config.load(None, TINY), precondition=precondition)
    for w in plan.workloads:
        one = plan.with_workloads([w])
        total, unit = plan_work(one, 1)
        bar = Bar()
        run_plan(one, stacks=("pblk",), bar=bar)
        assert unit == "B"
        if w.kind == "interference":               # its reader stops with the writer: a few reads short
            assert 0.98 * total <= bar.n <= total, (w.name, bar.n, total)
        else:
            assert abs(bar.n - total) <= len(w.qds), (w.name, bar.n, total)


def test_a_sweep_runs_share_of_the_bar_is_what_the_run_moves_it_by():
    plan = Plan.quick(Config.load(None, TINY), precondition="fill")
    w = plan.sweep_workload
    bar = Bar()
    run_one(plan.config, "pblk", w, w.qds[0], 1, progress=bar.update)       # what a sweep runs: no fresh run
    assert bar.n == work(w, plan.config, fresh=False)


def test_a_drifting_figure_is_reported_only_after_the_window_holds(drifting):
    for stack in ("pblk", "appnvm"):
        r = drifting["steady"][stack]["randwrite"]
        vals = r["values"]
        a, b = r["window"]
        assert r["reached"] and not r["limit_hit"] and r["rounds"] == b       # stopped when it held
        assert a > 1, (stack, vals)                                            # the first round drifted
        assert steady.check(vals[a - 1:b]).holds
        assert steady.steady_round(vals) == b                                  # no earlier window held
        got = drifting["stacks"][stack]["randwrite"]["1"]["throughput_mib_s"]
        assert min(vals[a - 1:b]) <= got <= max(vals[a - 1:b]), (stack, got, vals)
        assert abs(vals[0] / got - 1) > steady.EXCURSION, (stack, vals[0], got)  # round 1 is not the figure
        fob = drifting["fob"][stack]["randwrite"]["throughput_mib_s"]
        assert fob > 1.2 * got, (stack, fob, got)                              # fresh out of the box flatters
        assert r["wipc"]["bytes"] == 2 * drifting["capacity_bytes"] and len(r["per_round"]) == b
        assert drifting["stacks"][stack]["randwrite"]["1"]["mismatches"] == 0


def test_the_report_states_how_each_figure_was_preconditioned(drifting, tmp_path):
    drifting = dict(drifting, wall_s=1.0)
    write(drifting, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**steady** (SNIA PTS): twice the capacity in 128 KiB sequential writes" in md
    sec = md[md.index("## Fresh out of the box and steady"):]
    for stack in ("pblk", "appnvm"):
        a, b = drifting["steady"][stack]["randwrite"]["window"]
        assert f"| randwrite | {stack} |" in sec and f"steady at round {b} (window {a}-{b})" in sec
    assert "![convergence-randwrite.png](convergence-randwrite.png)" in md
    assert (tmp_path / "convergence-randwrite.png").read_bytes()[:4] == b"\x89PNG"
    assert "round limit" not in md.lower()


def test_a_round_limit_hit_is_reported_as_such(tmp_path):
    res = run_plan(_plan(["randread"], max_rounds=4), stacks=("pblk",))
    r = res["steady"]["pblk"]["randread"]
    assert r["rounds"] == 4 and r["limit_hit"] and not r["reached"] and r["window"] == [1, 4]
    res["wall_s"] = 1.0
    write(res, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert ("**round limit hit**: randread on pblk ran the full 4 rounds without the window holding; their "
            "figures are from the last rounds and are NOT steady state") in md
    assert "ROUND LIMIT 4 hit: not steady (rounds 1-4 reported)" in md
    assert "round limit hit: randread on pblk" in table(res)


def test_cli_precondition_options_are_checked_and_the_quick_default_is_said(tmp_path):
    run = CliRunner().invoke(main, ["compare", "--quick", "--max-rounds", "3", "--out", str(tmp_path)])
    assert run.exit_code == 2 and "limits the rounds of --precondition steady, not none (the --quick default)" \
        in run.output
    run = CliRunner().invoke(main, ["compare", "--quick", "--precondition", "fill", "--max-rounds", "3"])
    assert run.exit_code == 2 and "not fill" in run.output
    run = CliRunner().invoke(main, ["compare", "--quick", "--precondition", "warm"])
    assert run.exit_code == 2 and "'warm' is not one of" in run.output
    assert not any(tmp_path.iterdir())
    out = tmp_path / "q"
    run = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), "--stack", "pblk",
                                    "--set", TINY[0], "--set", TINY[1], "--tenants",
                                    "r rw=randread bs=4k number_ios=200"])
    assert run.exit_code == 0, run.output
    md = (out / "report.md").read_text()
    assert "This is the quick run's default" in md and "`--precondition steady`" in md
    assert json.loads((out / "results.json").read_text())["precondition"]["mode"] == "none"
