"""Job files as people write them, run by `ox compare --quick` unchanged: the corpus in
fio_corpus/ has the option sets of fio's own examples (ssd-test, ssd-steadystate,
jesd219, tiobench, fio-rand-RW) and two more (mobile, latency-zones) for the rest of the
modeled options. Each runs to completion on both stacks, every read verified, within a
small per-job request budget (--max-requests) that keeps each run to a few seconds. The
PNG figures (about 10 s of matplotlib per report, tested in test_compare.py) are drawn
only for the multi-phase ssd-test run."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from oxhost.cli import main
from oxhost.compare.fiojob import load_fio_job

CORPUS = Path(__file__).resolve().parent / "fio_corpus"
TINY = ["--quick", "--no-progress", "--set", "geometry.nblocks=16", "--set", "geometry.npages=16"]
BUDGET = 150


@pytest.fixture
def no_figures(monkeypatch):
    monkeypatch.setattr("oxhost.compare.figures.draw", lambda results, outdir: set())


def _run(tmp_path, job: Path, *args):
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["compare", *TINY, "--out", str(out), "--fio-job", str(job), *args])
    assert res.exit_code == 0, res.output
    return json.loads((out / "results.json").read_text()), (out / "report.md").read_text(), res.stdout


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.fio")))
def test_corpus_job_file_runs_to_completion_with_every_read_verified(no_figures, tmp_path, name):
    results, md, stdout = _run(tmp_path, CORPUS / name, "--max-requests", str(BUDGET))
    (wl,) = results["workloads"]
    labels = {j.label for j in load_fio_job(CORPUS / name, device_bytes=results["capacity_bytes"]).jobs}
    qd = str(results["workloads"][wl]["qds"][0])
    for stack in ("pblk", "appnvm"):
        r = results["stacks"][stack][wl][qd]
        assert r["mismatches"] == 0, stack
        assert r["verified_reads"] == r["reads"], stack                 # every read checked
        assert set(r["jobs"]) == labels
        assert all(j["requests"] <= BUDGET + 20 for j in r["jobs"].values())   # + fsync flushes
        assert r["requests"] > 0 and r["virtual_s"] > 0
    assert "ignored (they do not shape the I/O here): " in md or "ioengine" not in (CORPUS / name).read_text()
    assert "estimate: ~" in stdout and "requests per stack" in stdout


def test_jesd219_serves_sub_sector_writes_by_read_modify_write_and_keeps_its_zones(no_figures, tmp_path):
    results, md, _ = _run(tmp_path, CORPUS / "jesd219.fio", "--max-requests", "1000")
    for stack in ("pblk", "appnvm"):
        r = results["stacks"][stack]["jesd219"]["256"]
        assert r["mismatches"] == 0 and r["verified_reads"] == r["reads"] > 1000
        assert r["cut"] == [f"endurance#{k}" for k in range(4)]
        # 10% of the writes are 512 B..3.5 KiB at 4 KiB-aligned offsets: one sector read first, each
        assert r["rmw_writes"] == pytest.approx(0.10 * r["writes"], abs=0.03 * r["writes"])
        assert r["rmw_read_bytes"] == 4096 * r["rmw_writes"]
        assert r["partial_reads"] == pytest.approx(0.10 * r["reads"], abs=0.03 * r["reads"])
        for d in ("read", "write"):             # zoned:50/5:30/15:20/80, over all four jobs
            counts = [sum(per[d][z][1] for per in r["zones"].values()) for z in range(3)]
            shares = [100 * c / sum(counts) for c in counts]
            assert shares == pytest.approx([50, 30, 20], abs=3), (stack, d, shares)
    assert "cut short: the budget of 1,000 requests per job (--quick) ended endurance#0" in md
    assert "writes of part of a 4 KiB sector served by read-modify-write" in md
    assert "zoned accesses, % asked -> % measured over the run: read 50->" in md


def test_time_based_job_under_quick_ends_within_its_budget_and_is_reported_cut(no_figures, tmp_path):
    results, md, stdout = _run(tmp_path, CORPUS / "rand-rw.fio", "--max-requests", "200")
    for stack in ("pblk", "appnvm"):
        r = results["stacks"][stack]["rand-rw"]["16"]
        assert {j: v["requests"] for j, v in r["jobs"].items()} == {f"rand-rw#{k}": 200 for k in range(4)}
        assert r["cut"] == [f"rand-rw#{k}" for k in range(4)]
        assert r["virtual_s"] < 900                     # the 15-minute runtime was not reached
    assert "cut short: the budget of 200 requests per job (--quick) ended rand-rw#0, rand-rw#1" in md
    assert "capped at 200 requests per job: rand-rw#0" in stdout
    assert "scaled: the jobs reach 10,737,418,240 bytes" in md


def test_quick_alone_caps_fio_jobs_at_its_stated_budget(no_figures, tmp_path):
    job = tmp_path / "small.fio"
    job.write_text("[w]\nrw=randwrite\nnumber_ios=50\n[r]\nrw=read\nruntime=1ms\ntime_based\n")
    results, md, stdout = _run(tmp_path, job)
    assert results["workloads"]["small"]["max_requests"] == 5000
    for stack in ("pblk", "appnvm"):
        r = results["stacks"][stack]["small"]["1"]
        assert r["jobs"]["w#0"]["requests"] == 50 and r["cut"] == []   # both ended on their own
        assert 0 < r["jobs"]["r#0"]["requests"] < 5000
    assert "cut short" not in md


def test_ssd_test_runs_its_stonewall_groups_one_after_the_other(tmp_path):
    results, md, _ = _run(tmp_path, CORPUS / "ssd-test.fio", "--max-requests", "100")
    r = results["stacks"]["appnvm"]["ssd-test"]["4"]
    assert [p["jobs"] for p in r["phases"]] == [["seq-read#0"], ["rand-read#0"], ["seq-write#0"], ["rand-write#0"]]
    assert r["virtual_s"] == pytest.approx(sum(p["virtual_s"] for p in r["phases"]))
    reads = [p["bytes_read"] for p in r["phases"]]
    writes = [p["bytes_written"] for p in r["phases"]]
    assert reads[:2] == [409600, 409600] and reads[2:] == [0, 0] and writes == [0, 0, 409600, 409600]
    assert "appnvm: stonewall groups in order: 1. seq-read#0" in md
    assert "ignored (they do not shape the I/O here): direct, directory, filename, ioengine" in md
    assert "![latency_cdf.png](latency_cdf.png)" in md
    assert (tmp_path / "out" / "wa_over_time.png").read_bytes()[:4] == b"\x89PNG"   # drawn from the series
    series = results["series"]["appnvm"]["ssd-test"]
    assert [p["host_bytes"] for p in series] == sorted(p["host_bytes"] for p in series)
    assert series[-1]["host_bytes"] == 2 * 409600


def test_unmodeled_option_is_one_error_line(no_figures, tmp_path):
    job = tmp_path / "bad.fio"
    job.write_text("[j]\nrw=randread\nioengine=libaio\nsteadystate=iops:0.3%\n")
    res = CliRunner().invoke(main, ["compare", *TINY, "--out", str(tmp_path / "o"), "--fio-job", str(job)])
    assert res.exit_code == 2
    assert f"{job}:4: steadystate: not modeled" in res.output
    assert not (tmp_path / "o").exists()
