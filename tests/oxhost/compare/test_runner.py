"""The compare runner in virtual time: queue depth uses the device's parallelism, the
same configuration and seed give the same figures, and with the host cost model off the
QD 1 figures are those of earlier versions."""
import json

import pytest

from oxhost.compare import Plan
from oxhost.compare.runner import MEASURED, run_plan
from oxhost.config import Config

TINY = ["geometry.nblocks=16", "geometry.npages=16"]
NO_HOST = ["host.write_buffer_copy_ns=0", "host.gc_move_ns=0", "host.submit_ns=0", "host.complete_ns=0"]


def _only(plan, *names):
    return plan.with_workloads([w for w in plan.workloads if w.name in names])


def test_queue_depth_multiplies_random_read_throughput_in_quick():
    plan = _only(Plan.quick(qds=(1, 32)), "randread")
    res = run_plan(plan)
    for stack in ("pblk", "appnvm"):
        rr = res["stacks"][stack]["randread"]
        assert set(rr) == {"1", "32"}
        ratio = rr["32"]["throughput_mib_s"] / rr["1"]["throughput_mib_s"]
        assert ratio > 2.5, (stack, ratio)               # 4 LUNs on 2 channels of the quick geometry
        assert rr["32"]["verified_reads"] == 2000 and rr["32"]["mismatches"] == 0


def _strip(obj):
    """results without the wall-clock (measured) figures."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in MEASURED}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def test_same_config_and_seed_give_identical_results():
    cfg = Config.load(None, TINY + ["ftl.gc_policy=d-choice", "ftl.op=0.25"])
    plan = _only(Plan.quick(cfg, qds=(1, 8)), "mixed", "interference")
    runs = [json.loads(json.dumps(_strip(run_plan(plan, seed=5)), default=float)) for _ in range(2)]
    assert runs[0] == runs[1]
    assert runs[0]["stacks"]["pblk"]["mixed"]["8"]["requests"] == 2000
    other = _strip(run_plan(_only(plan, "mixed"), seed=6))
    assert other["stacks"]["pblk"]["mixed"]["8"] != runs[0]["stacks"]["pblk"]["mixed"]["8"]


# `ox compare --quick` of the QD 1 runner this one replaced, recorded before the change
# (AppNVM's seqwrite and randwrite since the timing model books channels transfer by transfer)
BEFORE = {
    "pblk/seqwrite": (355.26704713398965, 1948.16, 7841.062399999998, 1.0171875, 102, 21414984, 0.05629568),
    "pblk/randwrite": (351.4989489900226, 0.0, 0.0, 1.012, 39, 8322592, 0.02222624),
    "pblk/randread": (64.58746693121694, 60.48, 60.48, None, 2000, 8192000, 0.12096),
    "pblk/mixed": (90.75252399467693, 60.48, 60.48, 1.011965811965812, 1357, 7951536, 0.08608576),
    "appnvm/seqwrite": (494.05552393600203, 1927.68, 2799.9551999999994, 1.00625, 21, 21012320, 0.04048128),
    "appnvm/randwrite": (483.91632475074823, 0.0, 240.96, 1.0, 2001, 8192000, 0.01614432),
    "appnvm/randread": (64.58746693121694, 60.48, 60.48, None, 2001, 8192000, 0.12096),
    "appnvm/mixed": (83.31648340772895, 60.48, 240.96, 1.011965811965812, 2001, 8192000, 0.09376896),
}
KEYS = ("throughput_mib_s", "lat_p50_us", "lat_p99_us", "write_amplification", "nvme_cmds", "bus_bytes",
        "virtual_s")


def test_default_config_without_host_costs_reproduces_the_qd1_figures_of_before():
    plan = _only(Plan.quick(Config.load(None, NO_HOST), qds=(1,)), "seqwrite", "randwrite", "randread", "mixed")
    res = run_plan(plan)
    for key, want in BEFORE.items():
        stack, wl = key.split("/")
        got = res["stacks"][stack][wl]["1"]
        for k, v in zip(KEYS, want):
            assert got[k] == (pytest.approx(v, rel=1e-12) if v is not None else None), (key, k)


def test_several_jobs_share_the_device_in_virtual_time():
    """Four clones of a random-read stream at QD 4 each: 16 in flight, like one job at QD 16."""
    from dataclasses import replace
    plan = Plan.quick(Config.load(None, TINY), qds=(4,))
    rr = next(w for w in plan.workloads if w.name == "randread")
    many = run_plan(plan.with_workloads([replace(rr, jobs=4, nops=500, qds=(4,))]), stacks=("pblk",))
    one = run_plan(plan.with_workloads([replace(rr, nops=2000, qds=(16,))]), stacks=("pblk",))
    m, o = many["stacks"]["pblk"]["randread"]["4"], one["stacks"]["pblk"]["randread"]["16"]
    assert set(m["jobs"]) == {f"randread#{k}" for k in range(4)}
    assert all(j["requests"] == 500 and j["qd"] == 4 for j in m["jobs"].values())
    assert m["verified_reads"] == 2000 and m["mismatches"] == 0
    assert m["throughput_mib_s"] == pytest.approx(o["throughput_mib_s"], rel=0.15)
