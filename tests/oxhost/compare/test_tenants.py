"""Per-tenant figures: the tenants of a run add up to its totals, Jain's index is 1.0 for
identical tenants and falls when one is starved (a reader at QD 1 beside one at QD 32),
each tenant is measured alone, and `--tenants` is refused with one line when misused.
About 15 s."""
import pytest
from click.testing import CliRunner

from oxhost.cli import main
from oxhost.cli.compare_cmds import tenant_job
from oxhost.compare import Plan
from oxhost.compare.fiojob import parse_fio_job
from oxhost.compare.runner import run_plan
from oxhost.compare.tenants import jain
from oxhost.compare.workloads import Workload
from oxhost.config import Config

TINY = ["geometry.nblocks=16", "geometry.npages=16"]         # 2x2x16x16 under --quick


def test_jain_index_is_one_for_equal_shares_and_falls_for_a_starved_tenant():
    assert jain([0.5, 0.5, 0.5, 0.5]) == pytest.approx(1.0)
    assert jain([1.0, 1.0, 1.0, 0.05]) == pytest.approx(3.05 ** 2 / (4 * 3.0025))
    assert jain([1.0, 1.0, 1.0, 0.05]) < 0.8
    assert jain([1.0, 0.0, 0.0]) == pytest.approx(1 / 3)
    assert jain([]) is None and jain([None, 0.0]) is None


def _run(*specs, stacks=("pblk", "appnvm"), fill=False) -> dict:
    """The tenants (as --tenants takes them) at once; after a sequential fill of the
    device in a stonewall group of its own when `fill`."""
    plan = Plan.quick(Config.load(None, TINY))
    text = tenant_job(specs)
    if fill:                                    # the first tenant waits for the fill, the others start with it
        head, _, rest = text.partition("\n")
        text = f"[fill]\nrw=write\nbs=1m\n{head}\nstonewall\n{rest}"
    fio = parse_fio_job(text, device_bytes=plan.config.exported_sectors() * 4096)
    w = Workload("tenants", "tenants", kind="fio", fio_jobs=fio.jobs, qds=(max(s.iodepth for s in fio.jobs),))
    return run_plan(plan.with_workloads([w]), stacks=stacks)


def test_per_tenant_figures_add_up_to_the_totals():
    """Two writers and a reader on a filled region: requests, bytes, throughput, media
    bytes charged (WA share) of the tenants sum to the run's."""
    res = _run("fill rw=write bs=1m size=8m", "w1 rw=randwrite bs=4k size=8m number_ios=1500 iodepth=4",
               "w2 rw=randwrite bs=16k size=8m number_ios=600 iodepth=2", "r rw=randread bs=4k size=8m "
               "number_ios=1000 iodepth=2")
    for stack in ("pblk", "appnvm"):
        s = res["stacks"][stack]["tenants"]["4"]
        jobs = s["jobs"]
        assert set(jobs) == {"fill#0", "w1#0", "w2#0", "r#0"}
        for key in ("requests", "bytes", "bytes_written", "bytes_read"):
            total = s[key] if key != "requests" else s["requests"] + s["flushes"] + s["trims"]
            assert sum(j[key] for j in jobs.values()) == total, (stack, key)
        assert sum(j["throughput_mib_s"] for j in jobs.values()) == pytest.approx(s["throughput_mib_s"])
        assert sum(j["media_bytes"] for j in jobs.values()) == pytest.approx(s["media_bytes_programmed"])
        assert sum(j["wa_share"] for j in jobs.values()) == pytest.approx(1.0)
        assert jobs["r#0"]["wa_share"] == 0 and jobs["r#0"]["media_bytes"] == 0      # a reader writes nothing
        assert min(jobs[n]["wa_share"] for n in ("fill#0", "w1#0", "w2#0")) > 0.05
        assert s["media_bytes_programmed"] >= s["bytes_written"] and s["mismatches"] == 0
        group = s["fairness"][0]
        assert group["tenants"] == ["fill#0", "w1#0", "w2#0", "r#0"] and 0.25 <= group["jain"] <= 1.0
        for j in jobs.values():                                        # each tenant also ran alone
            assert j["alone"]["requests"] == j["requests"] and j["normalised"] > 0
            assert j["lat_p999_us"] >= j["lat_p99_us"] >= j["lat_p50_us"] >= 0


def test_jain_is_one_for_identical_tenants_and_falls_when_one_is_starved():
    same = _run("a rw=randread bs=4k number_ios=1500 iodepth=4", "b rw=randread bs=4k number_ios=1500 iodepth=4",
                stacks=("pblk",), fill=True)
    starved = _run("big rw=randread bs=4k number_ios=3000 iodepth=32", "small rw=randread bs=4k number_ios=300 "
                   "iodepth=1", stacks=("pblk",), fill=True)
    s = same["stacks"]["pblk"]["tenants"]["4"]
    a, b = s["jobs"]["a#0"], s["jobs"]["b#0"]
    assert a["normalised"] == pytest.approx(b["normalised"], rel=0.02)
    assert jain([a["normalised"], b["normalised"]]) == pytest.approx(1.0, abs=1e-3)
    t = starved["stacks"]["pblk"]["tenants"]["32"]
    big, small = t["jobs"]["big#0"], t["jobs"]["small#0"]
    assert small["normalised"] < 0.5 * big["normalised"]              # the QD 1 reader waits behind 32 others
    assert small["lat_p999_us"] > 4 * small["alone"]["lat_p999_us"]
    assert jain([big["normalised"], small["normalised"]]) < 0.9


def test_the_report_has_a_table_per_tenant_and_the_fairness_index(tmp_path):
    out = tmp_path / "t"
    run = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), "--stack", "pblk",
                                    "--set", TINY[0], "--set", TINY[1],
                                    "--tenants", "reader rw=randread bs=4k iodepth=1 number_ios=300",
                                    "--tenants", "writer rw=randwrite bs=64k iodepth=8 number_ios=300"])
    assert run.exit_code == 0, run.output
    md = (out / "report.md").read_text()
    sec = md[md.index("## Tenants"):]
    assert "| pblk | reader#0 | 1 |" in sec and "| pblk | writer#0 | 8 |" in sec and "Jain's index: pblk 0." in sec
    assert "![tenants-tenants.png](tenants-tenants.png)" in sec and (out / "tenants-tenants.png").is_file()
    assert "tenants of tenants: MiB/s, share of demand" in run.output


@pytest.mark.parametrize("spec, words", [
    ("rw=randread bs=4k", "start with the tenant's name"),
    ("r1 rw=randread stonewall", "tenants run at once"),
    ("r1 rw=randreed", "tenant r1: rw: 'randreed' is not modeled"),
    ("r1 bs='4k", "No closing quotation"),
])
def test_cli_tenants_misuse_is_one_line(spec, words, tmp_path):
    run = CliRunner().invoke(main, ["compare", "--quick", "--out", str(tmp_path / "x"), "--tenants", spec])
    assert run.exit_code == 2 and words in run.output, run.output
    assert "Traceback" not in run.output and not (tmp_path / "x").exists()
    twice = CliRunner().invoke(main, ["compare", "--quick", "--tenants", "a rw=read", "--tenants", "a rw=write"])
    assert twice.exit_code == 2 and "tenant name 'a' given twice" in twice.output
