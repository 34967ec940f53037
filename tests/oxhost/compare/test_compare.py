"""`ox compare --quick` produces a consistent report: tables, JSON, plots."""
import json

import pytest
from click.testing import CliRunner

from oxhost.cli import main


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out)])
    assert res.exit_code == 0, res.output + (res.stderr or "")
    return out, json.loads((out / "results.json").read_text()), res.stdout


def test_compare_quick_writes_report_json_and_pngs(report):
    out, results, stdout = report
    md = (out / "report.md").read_text()
    for png in ("throughput.png", "latency_cdf.png", "wa_over_time.png", "gc_activity.png",
                "cpu_per_gib.png", "cmds_per_gib.png", "bus_per_gib.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
        assert f"]({png})" in md
    assert set(results["stacks"]) == {"pblk", "appnvm"}
    assert "throughput" in stdout and "write amplification" in stdout


def test_compare_bytes_match_the_workloads(report):
    _, results, _ = report
    for stack, wls in results["stacks"].items():
        assert wls["seqwrite"]["bytes_written"] == wls["seqwrite"]["bytes"] > 0
        assert wls["randread"]["bytes_written"] == 0
        assert wls["randread"]["requests"] == wls["randwrite"]["requests"]
        mixed = wls["mixed"]
        assert mixed["bytes_read"] + mixed["bytes_written"] == mixed["bytes"] == mixed["requests"] * 4096
        assert 0.6 < mixed["bytes_read"] / mixed["bytes"] < 0.8
        cap = results["stacks"][stack]["overwrite"]["bytes"] / 2
        assert cap == pytest.approx(2 * 2 * 32 * 80 // 100 * 256 * 4096)


def test_compare_figures_are_physically_consistent(report):
    _, results, _ = report
    for stack, wls in results["stacks"].items():
        for name, r in wls.items():
            assert r["mismatches"] == 0, (stack, name)
            assert r["virtual_s"] > 0 and r["throughput_mib_s"] > 0
            assert r["lat_p99_us"] >= r["lat_p50_us"] >= 0
            assert r["nvme_cmds"] > 0 and r["host_cpu_s"] > 0
            if r["bytes_written"]:
                assert r["write_amplification"] >= 1.0, (stack, name)
        ov = wls["overwrite"]
        assert ov["write_amplification"] > 1.05, stack          # GC had to move data
        assert len(results["series"][stack]["overwrite"]) >= 10
        assert wls["randread"]["verified_reads"] == wls["randread"]["requests"]
