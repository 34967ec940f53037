"""Where a sweep's runs go: on two worker processes and on a local Dask cluster of two
workers a sweep gives the figures of one process, bit for bit; a stopped sweep started
again and a grown sweep take the runs they have from the cache and compute only the
others; misused options are refused before anything runs. About 60 s on 2 cores."""
import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

import oxftl.template

from oxhost.cli import main
from oxhost.compare import Plan
from oxhost.compare.cache import RunCache, code_version, run_key
from oxhost.compare.results import MEASURED
from oxhost.compare.runner import run_one, work
from oxhost.compare.sweep import run_grid, sweep_points
from oxhost.compare.workloads import Workload
from oxhost.config import Config
from tests.conftest import require

TINY = ["--set", "geometry.nblocks=16", "--set", "geometry.npages=16"]      # 2x2x16x16 under --quick
GRID = ["--sweep", "ftl.op=0.2,0.3", "--sweep", "ftl.gc_policy=greedy,cost-benefit"]    # 4 points


def _modeled(obj):
    """A sweep's points without the wall-clock figures."""
    if isinstance(obj, dict):
        return {k: _modeled(v) for k, v in obj.items() if k not in MEASURED}
    if isinstance(obj, list):
        return [_modeled(v) for v in obj]
    return obj


def _sweep(out, *args) -> dict:
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), "--stack", "pblk",
                                    "--stack", "appnvm", *TINY, *GRID, *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The grid (4 points, 2 stacks) run one after the other in this process."""
    res = _sweep(tmp_path_factory.mktemp("serial"), "--workers", "1", "--no-cache")
    assert res["sweep"]["runs"] == dict(total=8, computed=8, cached=0, workers=1, cluster=None)
    return res


def test_a_sweep_on_two_workers_gives_the_figures_of_one_process(one_process, tmp_path):
    res = _sweep(tmp_path, "--workers", "2", "--no-cache")
    assert res["sweep"]["runs"] == dict(total=8, computed=8, cached=0, workers=2, cluster=None)
    assert _modeled(res["sweep"]["points"]) == _modeled(one_process["sweep"]["points"])
    pts = res["sweep"]["points"]
    assert [p["set"] for p in pts] == [{"ftl.op": a, "ftl.gc_policy": g}
                                       for a in ("0.2", "0.3") for g in ("greedy", "cost-benefit")]
    for p in pts:
        for stack in ("pblk", "appnvm"):
            s = p["stacks"][stack]
            assert s["mismatches"] == 0 and s["verified_reads"] == s["reads"]
    assert res["speed"]["requests"] == sum(p["stacks"][s]["simulated_requests"] for p in pts for s in p["stacks"])
    assert "8 runs: 8 computed on 2 worker processes" in (tmp_path / "report.md").read_text()


def test_a_local_dask_cluster_of_two_workers_gives_the_figures_of_one_process(one_process, tmp_path):
    try:
        from distributed import LocalCluster
    except ImportError:
        LocalCluster = None
    require(LocalCluster is not None, "Dask's distributed package (scripts/install.sh installs it)")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as lc:
        res = _sweep(tmp_path, "--cluster", lc.scheduler_address, "--no-cache")
    assert res["sweep"]["runs"] == dict(total=8, computed=8, cached=0, workers=2, cluster=lc.scheduler_address)
    assert _modeled(res["sweep"]["points"]) == _modeled(one_process["sweep"]["points"])


def _overwrite() -> Plan:
    """A short sustained overwrite on 2x2x16x16: 16 KiB random writes, 2x capacity."""
    plan = Plan.quick(Config.load(None, ["geometry.nblocks=16", "geometry.npages=16"]))
    w = Workload("overwrite", "short overwrite", "overwrite", bs=16384, per_capacity=2.0, prefill=True, samples=10)
    return plan.with_workloads([w])


def test_a_stopped_sweep_started_again_computes_only_the_runs_it_lacks(tmp_path):
    plan = _overwrite()
    points = sweep_points(plan.config, ["ftl.op=0.2,0.3,0.4"])
    cache = RunCache(tmp_path / "cache")
    ran = []

    def stopped_after_two(cfg, mode, *args, **kw):
        if len(ran) == 2:
            raise KeyboardInterrupt                 # Ctrl-C during the third run
        ran.append(cfg.ftl.op)
        return run_one(cfg, mode, *args, **kw)

    with pytest.raises(KeyboardInterrupt):
        run_grid(plan, points, ("pblk",), 1, stopped_after_two, work, cache=cache)
    assert ran == [0.2, 0.3] and len(cache) == 2

    again = []

    def counted(cfg, mode, *args, **kw):
        again.append(cfg.ftl.op)
        return run_one(cfg, mode, *args, **kw)

    res = run_grid(plan, points, ("pblk",), 1, counted, work, cache=cache)
    assert again == [0.4]
    assert res["sweep"]["runs"] == dict(total=3, computed=1, cached=2, workers=1, cluster=None)
    assert res["speed"]["requests"] == res["sweep"]["points"][2]["stacks"]["pblk"]["simulated_requests"]
    wa = [p["stacks"]["pblk"]["steady_write_amplification"] for p in res["sweep"]["points"]]
    assert wa[0] > wa[1] > wa[2] > 1, wa


def test_a_sweep_grown_by_one_value_runs_only_the_new_point(tmp_path):
    out = tmp_path / "o"
    args = ["compare", "--quick", "--no-progress", "--out", str(out), "--stack", "pblk", *TINY,
            "--sweep", "ftl.gc_policy=cost-benefit", "--workers", "1"]
    assert CliRunner().invoke(main, args + ["--sweep", "ftl.op=0.2,0.3"]).exit_code == 0
    first = json.loads((out / "results.json").read_text())
    assert (out / "cache").is_dir()
    res = CliRunner().invoke(main, args + ["--sweep", "ftl.op=0.2,0.3,0.4"])
    assert res.exit_code == 0, res.output
    grown = json.loads((out / "results.json").read_text())
    assert grown["sweep"]["runs"] == dict(total=3, computed=1, cached=2, workers=1, cluster=None)
    assert grown["sweep"]["points"][:2] == first["sweep"]["points"]          # measured figures too: the same runs
    assert "3 runs: 1 computed on this process, 2 from the cache" in (out / "report.md").read_text()


def test_a_run_key_changes_with_everything_the_figures_depend_on():
    plan = _overwrite()
    cfg, w = plan.config, plan.sweep_workload
    key = run_key(cfg.to_dict(), "pblk", w, 1, 1)
    assert key == run_key(_overwrite().config.to_dict(), "pblk", replace(w), 1, 1)
    others = [run_key(cfg.with_overrides(["ftl.op=0.3"]).to_dict(), "pblk", w, 1, 1),
              run_key(cfg.with_overrides(["nand.t_prog_ns=300000"]).to_dict(), "pblk", w, 1, 1),
              run_key(cfg.to_dict(), "appnvm", w, 1, 1),
              run_key(cfg.to_dict(), "pblk", replace(w, bs=8192), 1, 1),
              run_key(cfg.to_dict(), "pblk", w, 4, 1),
              run_key(cfg.to_dict(), "pblk", w, 1, 2)]
    assert len({key, *others}) == 7
    assert len(code_version()) == 20


def test_a_plug_in_ftl_file_is_part_of_its_runs_key(tmp_path):
    src = Path(oxftl.template.__file__).read_text()
    f = tmp_path / "myftl.py"
    f.write_text(src)
    plan = _overwrite()
    mode = f"{f}:PageFtl@host"
    key = run_key(plan.config.to_dict(), mode, plan.sweep_workload, 1, 1)
    f.write_text(src + "\n# a change\n")
    assert run_key(plan.config.to_dict(), mode, plan.sweep_workload, 1, 1) != key


def test_an_unreadable_cache_entry_is_computed_again(tmp_path, caplog):
    cache = RunCache(tmp_path)
    cache.put("ab" * 16, {"summary": {"requests": 1}})
    assert cache.get("ab" * 16) == {"summary": {"requests": 1}}
    path = next(tmp_path.glob("*/*.json"))
    path.write_text(path.read_text()[:-5])                  # cut short: not JSON
    with caplog.at_level(logging.WARNING):
        assert cache.get("ab" * 16) is None
    assert "computing that run again" in caplog.text
    assert cache.get("cd" * 16) is None


@pytest.mark.parametrize("args,words", [
    (["--workers", "2"], "--workers: says how a sweep's runs are run: give --sweep too"),
    (["--no-cache"], "--no-cache: says how a sweep's runs are run: give --sweep too"),
    (["--sweep", "ftl.op=0.2", "--workers", "2", "--cluster", "tcp://127.0.0.1:8786"], "with --cluster"),
    (["--sweep", "ftl.op=0.2", "--cluster", "nonsense"], "is not a Dask scheduler address"),
    (["--sweep", "ftl.op=0.2", "--cache", "c", "--no-cache"], "contradict"),
    (["--sweep", "ftl.op=0.2", "--workers", "0"], "--workers"),
])
def test_sweep_options_that_cannot_apply_are_one_error_line(tmp_path, args, words):
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "compare", "--quick", "--no-progress",
                        "--out", str(tmp_path / "o"), *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ox: error: ") and words in lines[0], p.stderr
    assert not (tmp_path / "o").exists()
