"""fio jobs on the stacks in virtual time: a write of part of a sector is a read-modify-
write the device sees and WA counts; time-based jobs end at their runtime; rate,
thinktime, startdelay, ramp_time and exitall shape the run on the modeled clock."""
from pathlib import Path

import pytest

from oxhost.compare import Plan, sweep
from oxhost.compare.fiojob import load_fio_job, parse_fio_job
from oxhost.compare.runner import capacity, estimate_lines, plan_work, run_plan
from oxhost.compare.workloads import Workload, estimates
from oxhost.config import Config

TINY = ["geometry.nblocks=16", "geometry.npages=16"]
CORPUS = Path(__file__).resolve().parent / "fio_corpus"


def run(text: str, stacks=("pblk", "appnvm"), cap: int = 0) -> dict:
    """The job file's figures per stack (its summary at its headline queue depth)."""
    plan = Plan.quick(Config.load(None, TINY))
    fio = parse_fio_job(text, device_bytes=capacity(plan.config))
    w = Workload("job", "job", kind="fio", fio_jobs=fio.jobs, qds=(max(j.iodepth for j in fio.jobs),),
                 max_requests=cap, notes=fio.notes())
    res = run_plan(plan.with_workloads([w]), stacks=stacks)
    out = {s: res["stacks"][s]["job"][str(w.qds[0])] for s in stacks}
    for s, r in out.items():
        assert r["mismatches"] == 0 and r["verified_reads"] == r["reads"], s
    return out


RMW = """
[fill]
rw=write
bs=64k
size=1m
[small]
stonewall
rw=randwrite
bs=512
blockalign=4k
size=1m
norandommap
number_ios=64
"""


def test_512_byte_write_is_a_sector_read_and_a_sector_write_on_the_device():
    for stack, r in run(RMW).items():
        fill, small = r["phases"]
        assert (small["rmw_writes"], small["rmw_read_bytes"]) == (64, 64 * 4096), stack
        assert small["bytes_written"] == 64 * 512                          # what the host asked
        # WA counts the 4 KiB programmed for each 512 B asked (buffered fill data may add to it)
        assert small["write_amplification"] >= 8.0, stack
        assert fill["rmw_writes"] == 0 and fill["write_amplification"] < 2
    appnvm = run(RMW, stacks=("appnvm",))["appnvm"]["phases"][1]
    assert 128 <= appnvm["nvme_cmds"] <= 129                            # a read and a write command (+ flush)
    assert appnvm["bus_bytes"] >= 64 * 4096 * 2                         # a sector out and a sector in, each
    assert appnvm["media_bytes_programmed"] == 64 * 4096                # whole sectors programmed: WA 8
    pblk = run(RMW, stacks=("pblk",))["pblk"]
    assert pblk["final_stats"]["host.counters.user_read_sectors"] == 64   # pblk read one sector for each
    assert pblk["final_stats"]["host.user_sectors"] == 256 + 64


def test_sub_sector_reads_read_the_whole_sector_and_are_verified():
    r = run("[w]\nrw=write\nbs=4k\nsize=64k\n[r]\nstonewall\nrw=randread\nbs=1k\nsize=64k\nnumber_ios=40\n",
            stacks=("appnvm",))["appnvm"]
    assert r["partial_reads"] == 40 and r["verified_reads"] == 40
    assert r["phases"][1]["nvme_cmds"] in (40, 41) and r["bytes_read"] == 40 * 1024   # + the final flush
    assert 40 * 4096 <= r["phases"][1]["bus_bytes"] < 41 * 4096


def test_time_based_job_runs_until_its_runtime_in_virtual_time():
    r = run("[j]\nrw=randwrite\nsize=4m\nruntime=3ms\ntime_based\niodepth=4\n", stacks=("appnvm",))["appnvm"]
    assert r["requests"] > 100 and r["cut"] == []
    assert 0.003 <= r["virtual_s"] < 0.005             # issues stop at 3 ms; then completions and the flush


def test_rate_iops_paces_the_job_in_virtual_time():
    r = run("[j]\nrw=randread\nsize=4m\nrate_iops=10000\nruntime=10ms\ntime_based\niodepth=8\n",
            stacks=("appnvm",))["appnvm"]
    assert r["requests"] == 100                                           # 10 ms at 10,000 IOPS
    assert r["iops"] == pytest.approx(10000, rel=0.02)


def test_thinktime_stalls_after_each_block_of_requests():
    base = "[j]\nrw=randread\nsize=4m\nnumber_ios=40\niodepth=4\n"
    fast = run(base, stacks=("appnvm",))["appnvm"]["virtual_s"]
    slow = run(base + "thinktime=1000\nthinktime_blocks=4\n", stacks=("appnvm",))["appnvm"]["virtual_s"]
    assert slow - fast == pytest.approx(10 * 0.001, rel=0.15)            # 40 requests / 4 = 10 stalls of 1 ms


def test_startdelay_and_exitall_in_virtual_time():
    r = run("[a]\nrw=randread\nsize=4m\nnumber_ios=20\nstartdelay=2ms\n"
            "[b]\nrw=randread\nsize=4m\nruntime=1ms\ntime_based\nexitall\n", stacks=("appnvm",))["appnvm"]
    assert r["jobs"]["a#0"]["requests"] == 0                              # b ended everything before a began
    assert r["virtual_s"] < 0.0012
    r = run("[a]\nrw=randread\nsize=4m\nnumber_ios=20\nstartdelay=2ms\n", stacks=("appnvm",))["appnvm"]
    assert r["jobs"]["a#0"]["requests"] == 20 and r["virtual_s"] > 0.002


def test_ramp_time_runs_first_and_is_left_out_of_the_figures():
    r = run("[j]\nrw=randread\nsize=4m\nnumber_ios=50\nramp_time=2ms\niodepth=2\n", stacks=("appnvm",))["appnvm"]
    assert r["requests"] == 50 and r["virtual_s"] < 0.002                 # the measured run only
    assert r["ramp_cut"] == []


class Bar:
    """What run_plan needs of a progress bar: it adds up the updates."""

    def __init__(self):
        self.n = 0

    def update(self, k):
        self.n += k

    def set_description(self, _):
        pass


def _workload(plan, path: Path, cap: int) -> Workload:
    fio = load_fio_job(path, device_bytes=capacity(plan.config))
    return Workload(path.stem, path.stem, kind="fio", fio_jobs=fio.jobs,
                    qds=(max(j.iodepth for j in fio.jobs),), max_requests=cap)


def test_the_progress_bar_counts_requests_to_its_estimated_total():
    plan = Plan.quick(Config.load(None, TINY))
    plan = plan.with_workloads([_workload(plan, CORPUS / "mobile.fio", 120)])
    total, unit = plan_work(plan, 2)
    ests = estimates(plan.workloads[0], plan.config)
    assert [e.requests for e in ests] == [135, 120, 120] and all(0 < e.ramp <= 120 for e in ests)   # + fsync=8's
    assert unit == "req" and total == 2 * sum(e.requests + e.ramp for e in ests)
    bar = Bar()
    run_plan(plan, bar=bar)
    assert bar.n == total                                                # the bar ends at its total


def test_a_full_run_estimated_at_over_an_hour_says_so_before_it_starts():
    plan = Plan.full()
    long = plan.with_workloads([_workload(plan, CORPUS / "rand-rw.fio", 0)])
    lines = estimate_lines(long, 2)
    assert lines[0].startswith("rand-rw: ~") and "rand-rw#3" in lines[0]
    assert lines[-1].startswith("note: this run is estimated to take about ") and " days;" in lines[-1]
    quick = plan.with_workloads([_workload(plan, CORPUS / "rand-rw.fio", 5000)]).with_precondition("none")
    lines = estimate_lines(quick, 2)
    assert lines[1] == "rand-rw: capped at 5,000 requests per job: rand-rw#0, rand-rw#1, rand-rw#2, rand-rw#3 cut short"
    # 4 jobs of 5,000 and a flush, then each of them alone and a flush: 40,005 a stack
    assert lines[-1] == ("estimate: ~80,010 requests on 2 stack(s) (each tenant of a group once more alone), "
                         "about 8 s at ~10,000 requests/s each")
    two = estimate_lines(quick, 8, workers=2)                        # a sweep's runs on two processes
    assert two[-1] == ("estimate: ~320,040 requests on 8 stack(s) (each tenant of a group once more alone), "
                       "about 16 s on 2 worker processes at ~10,000 requests/s each")


def test_a_steady_state_estimate_counts_preconditioning_every_round_and_the_fresh_run():
    plan = Plan.full().with_workloads([_workload(Plan.full(), CORPUS / "rand-rw.fio", 5000)])
    wipc = 2 * (-(-capacity(plan.config) // (128 * 1024)) + 1)       # 128 KiB writes over 2x capacity, 2 flushes
    job, alone = 20_001, 20_004                                        # each run ends in a flush
    lo = wipc + 5 * job + alone + job + alone                          # a window of 5 rounds, the fresh run
    hi = wipc + 25 * job + alone + job + alone                         # the round limit
    assert estimate_lines(plan, 2)[-1] == (
        f"estimate: ~{2 * lo:,} to ~{2 * hi:,} requests on 2 stack(s) (precondition steady: twice the capacity "
        "in 128 KiB writes, 5 to 25 rounds; each tenant of a group once more alone; the fresh-out-of-box run), "
        "about 42 s to 2 min at ~10,000 requests/s each")
    sweep = estimate_lines(plan, 2, fresh=False)[-1]                # a sweep's runs: no fresh-out-of-box run
    assert sweep.startswith(f"estimate: ~{2 * (lo - job - alone):,} to ~{2 * (hi - job - alone):,} requests ")
    assert "fresh-out-of-box" not in sweep
    fill = estimate_lines(plan.with_precondition("fill"), 1)[-1]
    assert fill.startswith(f"estimate: ~{wipc + job + alone + job + alone:,} requests on 1 stack(s) "
                           "(precondition fill: twice the capacity in 128 KiB writes, 1 round; ")
    slow = Plan.full().with_workloads([_workload(Plan.full(), CORPUS / "rand-rw.fio", 400_000)])
    assert estimate_lines(slow, 2)[-1].startswith("note: this run may take up to ")   # only at the round limit


TENANTS = """
[a]
rw=randwrite
bs=4k
size=2m
number_ios=150
[b]
rw=randread
bs=4k
size=2m
number_ios=100
"""


@pytest.mark.parametrize("precondition", ["steady", "fill"])
def test_a_preconditioned_run_makes_as_many_requests_as_its_estimate_allows_and_the_pace_counts_them_all(precondition):
    plan = Plan.quick(Config.load(None, TINY), precondition=precondition, max_rounds=7)
    fio = parse_fio_job(TENANTS, device_bytes=capacity(plan.config))
    plan = plan.with_workloads([Workload("two", "two", kind="fio", fio_jobs=fio.jobs, qds=(1,))])
    line = estimate_lines(plan, 1)[-1]
    counts = [int(x.strip("~").replace(",", "")) for x in line.split(" requests")[0].split()[1::2]]
    lo, hi = counts[0], counts[-1]
    total, _ = plan_work(plan, 2)
    bar = Bar()
    res = run_plan(plan, bar=bar)
    for s in ("pblk", "appnvm"):
        made = res["stacks"][s]["two"]["1"]["simulated_requests"] + res["fob"][s]["two"]["simulated_requests"]
        assert lo <= made <= hi, (s, lo, made, hi)
        rounds = res["steady"][s]["two"]["rounds"]
        assert made == lo + 251 * (rounds - (5 if precondition == "steady" else 1))   # a round past the fewest: a pass
        assert made - res["fob"][s]["two"]["simulated_requests"] > wipc_and_rounds(res, s)   # tenants alone counted
    if precondition == "fill":
        assert bar.n == total                                       # one round and the fresh run: the bar's end
    assert sweep.simulated(res) == sum(res["stacks"][s]["two"]["1"]["simulated_requests"]
                                       + res["fob"][s]["two"]["simulated_requests"] for s in ("pblk", "appnvm"))


def wipc_and_rounds(res: dict, stack: str) -> int:
    """What the preconditioning and the rounds alone made: WIPC's writes and flushes, and
    251 requests a round (the jobs' and a flush)."""
    st = res["steady"][stack]["two"]
    return 2 * (-(-res["capacity_bytes"] // (128 * 1024)) + 1) + 251 * st["rounds"]


def test_a_capped_job_s_fsyncs_come_on_top_of_its_budget_in_the_estimate_as_in_the_run():
    plan = Plan.quick(Config.load(None, TINY))
    fio = parse_fio_job("[w]\nrw=randwrite\nbs=4k\nsize=2m\nfsync=4\n", device_bytes=capacity(plan.config))
    plan = plan.with_workloads([Workload("w", "w", kind="fio", fio_jobs=fio.jobs, qds=(1,), max_requests=100)])
    assert [e.requests for e in estimates(plan.workloads[0], plan.config)] == [125]    # 100 writes, 25 fsyncs
    line = estimate_lines(plan, 1)[-1]
    made = run_plan(plan, stacks=("pblk",))["stacks"]["pblk"]["w"]["1"]["simulated_requests"]
    assert made == 126 and line.startswith(f"estimate: ~{made:,} requests on 1 stack(s), ")   # and the last flush
