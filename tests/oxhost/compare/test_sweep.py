"""Sweeps: over-provisioning and GC thresholds move steady-state write amplification the
way they must, and `ox compare --sweep` runs the grid and plots it."""
import json

import pytest
from click.testing import CliRunner

from oxhost.cli import main
from oxhost.compare import Plan
from oxhost.compare.runner import run_sweep, sweep_points
from oxhost.compare.workloads import Workload
from oxhost.config import Config, ConfigError

TINY = ["geometry.nblocks=16", "geometry.npages=16"]       # 2x2x16x16 under --quick


def _overwrite(cfg: Config) -> Plan:
    """A short sustained overwrite: 16 KiB random writes, 2x capacity, after a fill."""
    plan = Plan.quick(cfg)
    cap = plan.config.exported_sectors() * 4096
    w = Workload("overwrite", "short overwrite", "overwrite", bs=16384, nbytes=2 * cap, per_capacity=2.0,
                 prefill=True, samples=20)
    return plan.with_workloads([w])


def _steady(res, key, stack):
    return {p["set"][key]: p["stacks"][stack]["steady_write_amplification"] for p in res["sweep"]["points"]}


def test_more_over_provisioning_lowers_steady_write_amplification():
    plan = _overwrite(Config.load(None, TINY))
    res = run_sweep(plan, sweep_points(plan.config, ["ftl.op=0.25,0.4"]), ("pblk", "appnvm"), 1, False)
    for stack in ("pblk", "appnvm"):
        wa = _steady(res, "ftl.op", stack)
        assert wa["0.25"] > 1.3 * wa["0.4"] > 1.3, (stack, wa)
        for p in res["sweep"]["points"]:
            assert p["stacks"][stack]["mismatches"] == 0


def test_a_higher_gc_threshold_costs_pblk_write_amplification():
    """pblk's GC runs while less than gc_background of its space is free: a higher threshold
    keeps more space free, which then cannot hold garbage (the quick geometry: 32 lines)."""
    plan = _overwrite(Config.load(None, ["ftl.op=0.3"]))
    res = run_sweep(plan, sweep_points(plan.config, ["ftl.gc_background=0.05,0.5"]), ("pblk",), 1, False)
    wa = _steady(res, "ftl.gc_background", "pblk")
    assert wa["0.5"] > 1.2 * wa["0.05"], wa


def test_sweep_points_are_checked_before_anything_runs():
    cfg = Config.load(None, TINY)
    assert len(sweep_points(cfg, ["ftl.op=0.2,0.3", "ftl.gc_policy=greedy,fifo,random"])) == 6
    with pytest.raises(ConfigError, match="ftl.gc_policy"):
        sweep_points(cfg, ["ftl.gc_policy=greedy,lru"])
    with pytest.raises(ConfigError, match="ftl.op"):
        sweep_points(cfg, ["ftl.op"])


def test_cli_sweep_runs_the_grid_and_plots_it(tmp_path):
    out = tmp_path / "sweep"
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), "--stack", "pblk",
                                    "--set", TINY[0], "--set", TINY[1], "--sweep", "ftl.op=0.2,0.3",
                                    "--sweep", "ftl.gc_policy=cost-benefit"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    pts = results["sweep"]["points"]
    assert [p["set"] for p in pts] == [{"ftl.op": a, "ftl.gc_policy": "cost-benefit"} for a in ("0.2", "0.3")]
    assert pts[0]["stacks"]["pblk"]["write_amplification"] > pts[1]["stacks"]["pblk"]["write_amplification"]
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "![sweep.png](sweep.png)" in md and "fall as op grows" in md
    assert "sweep of ftl.op, ftl.gc_policy" in res.stdout
