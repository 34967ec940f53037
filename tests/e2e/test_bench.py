"""`ox bench` as a product: one command writes every figure of issue 10 to its JSON, each
with positive numbers and its ratio (no timing assertions: the figures are the product's
output, not a pass mark). The run is shrunk (PLANS["quick"] patched to seconds' worth of
work) so the test exercises the real mounts, fio and reference file systems quickly."""
import json

import pytest
from click.testing import CliRunner

from oxhost.bench import ext4 as ext4_bench
from oxhost.bench import suite
from oxhost.cli import main

from .conftest import ROOT_ONLY

TINY = dict(bus_mib=8, reads=500, fill_mib=16, region_mib=16, runtime=0.3, repeat=1,
            deep_mib=8, ext4_big_mib=16, ext4_files=300, ext4_repeat=1)

FUSE_KEYS = [p + k for p in ("", "appnvm_") for k in
             ("fuse_seq_write_1m", "fuse_seq_read_1m", "fuse_rand_write_4k", "fuse_rand_read_4k")]
BUS_KEYS = ["bus_line_write", "bus_line_read", "bus_read_4k_cmds"]


@pytest.fixture
def tiny_plan(monkeypatch):
    monkeypatch.setitem(suite.PLANS, "quick", TINY)


@ROOT_ONLY
def test_e2e_bench_quick_json_writes_every_figure(tiny_plan, tmp_path):
    out = tmp_path / "bench.json"
    r = CliRunner().invoke(main, ["bench", "--quick", "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    for key in FUSE_KEYS + BUS_KEYS:
        f = doc[key]
        assert set(f) >= {"ours", "store", "null", "ratio"}, key
        assert f["ours"] > 0 and f["ratio"] > 0, key
        if key.startswith(("fuse", "appnvm_fuse")):
            assert f["store"] > 0 and f["null"] > 0, key
        elif key != "bus_read_4k_cmds":
            assert f["store"] > 0 and f["null"] is None, key        # the numpy copy
    for key in ("fuse_deep_queue", "appnvm_fuse_deep_queue"):
        assert doc[key]["ours"] > 0 and doc[key]["qd1"] > 0
    assert doc["_run"]["plan"] == "quick"
    assert "fuse_seq_write_1m" in r.output and "ratio" in r.output      # the table


@ROOT_ONLY
def test_e2e_bench_ext4_part_writes_its_figures_for_both_modes(tmp_path):
    doc = ext4_bench.figures(TINY, str(tmp_path), ("pblk", "appnvm"), echo=lambda *a: None)
    for key in ("ext4_copy_big", "ext4_copy_tree", "appnvm_ext4_copy_big", "appnvm_ext4_copy_tree"):
        f = doc[key]
        assert f["ours"] > 0 and f["store"] > 0 and f["ratio"] > 0 and f["null"] is None, key
