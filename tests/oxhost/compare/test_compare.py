"""`ox compare --quick` produces a consistent report for any set of stacks -- pblk, AppNVM
and the template FTL on both sides of the bus: the configuration, tables keyed by queue
depth, the interference figure, wear and validity maps, JSON and plots, and the placement
section (the same FTL in the host and in the device). One run serves the module (~30 s)."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import oxftl.template
from oxhost.cli import main

TINY = ["--set", "geometry.nblocks=16", "--set", "geometry.npages=16"]     # 2x2x16x16 under --quick
TEMPLATE = f"{oxftl.template.__file__}:PageFtl"                           # FILE.py:Class, as users give it
NAMES = {"pblk", "appnvm", "PageFtl@host", "PageFtl@device"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), *TINY,
                                    "--stack", "pblk", "--stack", "appnvm", "--stack", f"{TEMPLATE}@host",
                                    "--stack", f"{TEMPLATE}@device"])
    assert res.exit_code == 0, res.output + (res.stderr or "")
    return out, json.loads((out / "results.json").read_text()), res.stdout


def test_compare_quick_writes_report_json_and_pngs(report):
    out, results, stdout = report
    md = (out / "report.md").read_text()
    for png in ("throughput.png", "qd_throughput.png", "qd_latency.png", "latency_cdf.png", "interference.png",
                "wa_over_time.png", "gc_activity.png", "heatmap_erase.png", "heatmap_valid.png",
                "cpu_per_gib.png", "cmds_per_gib.png", "bus_per_gib.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, png
        i = md.index(f"]({png})")
        line = md[i:].split("\n")[2]                    # one explaining line under each figure
        assert len(line) > 60 and "\n" not in line, png
    assert set(results["stacks"]) == NAMES
    assert results["modes"]["PageFtl@host"] == f"{TEMPLATE}@host"
    assert "throughput" in stdout and "write amplification" in stdout and "against queue depth" in stdout


def test_compare_prints_the_configuration(report):
    out, results, stdout = report
    md = (out / "report.md").read_text()
    for words in ("geometry: 2 ch x 2 LUN x 16 blk x 16 pg", "tPROG 200 us", "ftl.op = 0.2",
                  "GC victim policy (pblk and AppNVM): greedy", "rate limiter high", "wear levelling none",
                  "host cost model: 300 ns", "PageFtl@host: plug-in FTL 'template' version 1 in the host on LUNs 0-3",
                  "PageFtl@device: plug-in FTL 'template' version 1 in the device"):
        assert words in md and words in stdout, words
    assert results["config"]["ftl"]["gc_policy"] == "greedy"
    params = results["params"]
    assert params["pblk"]["capacity_bytes"] == params["appnvm"]["capacity_bytes"]
    assert results["capacity_bytes"] == 51 * 128 * 4096
    # the template keeps 20 % of the blocks back whatever ftl.op says: 51 of 64 blocks of 128 sectors
    assert params["PageFtl@host"]["capacity_bytes"] == params["PageFtl@device"]["capacity_bytes"] == 51 * 128 * 4096
    assert params["PageFtl@host"]["ftl"] == params["PageFtl@device"]["ftl"] == "template"
    assert "Stacks: **pblk** = host FTL" in md and "**PageFtl@device** = plug-in FTL" in md


def test_compare_results_are_keyed_by_queue_depth(report):
    _, results, _ = report
    for stack, wls in results["stacks"].items():
        assert set(wls["randread"]) == {"1", "4", "32"}
        assert set(wls["randwrite"]) == {"1", "4", "32"}
        assert set(wls["mixed"]) == {"1", "32"}
        rr = wls["randread"]
        assert rr["32"]["throughput_mib_s"] > 2 * rr["1"]["throughput_mib_s"], stack
        assert rr["32"]["lat_p50_us"] > rr["1"]["lat_p50_us"]          # queueing shows in the latency
        for qd, r in rr.items():
            assert r["verified_reads"] == r["requests"] == 2000


def test_compare_figures_are_physically_consistent(report):
    _, results, _ = report
    for stack, wls in results["stacks"].items():
        for name, by_qd in wls.items():
            for qd, r in by_qd.items():
                assert r["mismatches"] == 0, (stack, name, qd)
                assert r["virtual_s"] > 0 and r["throughput_mib_s"] > 0
                assert r["lat_p999_us"] >= r["lat_p99_us"] >= r["lat_p50_us"] > 0, (stack, name, qd)
                assert r["nvme_cmds"] > 0 and r["host_cpu_s"] > 0
                if r["bytes_written"]:
                    assert r["write_amplification"] >= 1.0, (stack, name)
        seq = wls["seqwrite"]["1"]
        assert seq["bytes_written"] == seq["bytes"] > 0
        mixed = wls["mixed"]["1"]
        assert mixed["bytes_read"] + mixed["bytes_written"] == mixed["bytes"] == mixed["requests"] * 4096
        ov = wls["overwrite"]["1"]
        assert ov["write_amplification"] > 1.05 and ov["steady_write_amplification"] > 1.05, stack
        assert len(results["series"][stack]["overwrite"]) >= 10
    # buffered pblk writes cost the copy, AppNVM's a command round trip: neither is free
    assert results["stacks"]["pblk"]["randwrite"]["1"]["write_p50_us"] == pytest.approx(0.3)
    assert results["stacks"]["appnvm"]["randwrite"]["1"]["write_p50_us"] == pytest.approx(2.0)


def test_compare_interference_measures_reads_under_gc(report):
    _, results, stdout = report
    for stack in NAMES:
        r = results["stacks"][stack]["interference"]["1"]
        idle = r["idle"]
        assert idle["read_p999_us"] == pytest.approx(62.48)              # tR + transfer + host, alone
        assert r["read_p999_us"] > 10 * idle["read_p999_us"]              # behind programs, erases, GC
        assert r["writer"]["write_amplification"] > 1.5
        assert r["verified_reads"] == r["requests"] > 3 and r["mismatches"] == 0
        assert set(results["cdf"][stack]["interference"]["1"]) == {"gc", "idle"}
    assert "under GC" in stdout


def test_compare_wear_and_validity_maps(report):
    _, results, _ = report
    for stack in ("PageFtl@host", "PageFtl@device"):        # erase counts from the media; no map to read
        w = results["wear"][stack]["overwrite"]
        assert len(w["erase"]) == 4 and w["erase_max"] >= 2 and w["valid"] is None
    for stack in ("pblk", "appnvm"):
        w = results["wear"][stack]["overwrite"]
        assert len(w["erase"]) == 4 and len(w["erase"][0]) == 16
        assert len(w["valid"]) == 4 and len(w["valid"][0]) == 16
        assert w["erase_max"] >= 2 and w["wear_spread"] >= 1.0
        total_valid = sum(map(sum, w["valid"]))
        cap = results["capacity_bytes"] // 4096
        assert 0.9 * cap <= total_valid <= cap                          # the overwrite touched most LBAs


def test_compare_places_the_same_ftl_on_both_sides_side_by_side(report):
    out, results, stdout = report
    md = (out / "report.md").read_text()
    png = (out / "placement-PageFtl.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    section = md[md.index("## Placement: PageFtl in the host and in the device"):md.index("## Figures")]
    for col in ("MiB/s", "p99.9 us", "host CPU s/GiB", "bus GiB/GiB", "NVMe cmds/GiB", "WA (check)"):
        assert col in section, col
    assert "![placement-PageFtl.png](placement-PageFtl.png)" in section
    assert "What this isolates: placement alone" in section
    assert "placement: PageFtl@device / PageFtl@host" in stdout
    host, dev = results["stacks"]["PageFtl@host"], results["stacks"]["PageFtl@device"]
    for wl in host:
        h, d = host[wl][next(iter(host[wl]))], dev[wl][next(iter(dev[wl]))]
        if h["bytes_written"]:                          # the same code writes the same pages, on either side
            assert h["media_bytes_programmed"] == d["media_bytes_programmed"], wl
    ov_h, ov_d = host["overwrite"]["1"], dev["overwrite"]["1"]
    # GC in the host reads every moved sector over the bus and writes it back; in the device it stays there
    assert ov_h["bus_bytes_per_gib"] > 4 * ov_d["bus_bytes_per_gib"] and ov_d["bus_bytes_per_gib"] < 1.01 * 2**30
    # sequential 1 MiB writes: one NVMe command per 1 MiB in the device, one per page program in the host
    assert host["seqwrite"]["1"]["nvme_cmds_per_gib"] > 16 * dev["seqwrite"]["1"]["nvme_cmds_per_gib"]
