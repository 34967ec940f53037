"""`ox compare` takes any stack and measures every one the same way: --stack and --ftl
are checked before anything runs (one error line, nothing written), the stacks' short names
stay unique, compare's modules read block devices only through their measuring surface
(stats, ftl_params, block_valid_sectors, host_buffer) and import one another one way, and
every block device answers that surface; a fio job and a sweep run on plug-in FTLs. About
15 s in all."""
import ast
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import oxftl.template
from oxhost.cli import main
from oxhost.cli.compare_cmds import _stacks
from oxhost.compare import Plan
from oxhost.compare.runner import run_sweep, sweep_points
from oxhost.compare.stacks import names, placement_pairs
from oxhost.compare.workloads import Workload
from oxhost.config import Config
from oxhost.stack import open_stack

COMPARE = Path(__file__).resolve().parents[3] / "oxhost" / "compare"
TEMPLATE = f"{oxftl.template.__file__}:PageFtl"
TINY = ["geometry.nchannels=1", "geometry.nluns=2", "geometry.nblocks=16", "geometry.npages=16"]
# pblk's internals: its line geometry, L2P, line manager, write buffer, rate limiter,
# counters, GC and writer objects
PBLK_INTERNALS = {"lg", "l2p", "lm", "rb", "rl", "c", "gc", "writer"}


def _one_line(res, code: int) -> str:
    assert res.exit_code == code, res.output
    assert res.stderr.startswith("ox: error: ") and res.stderr.count("\n") == 1, res.stderr
    return res.stderr


def test_ftl_adds_the_ftl_on_its_sides_after_the_stacks_each_once():
    assert _stacks((), (), "both") == ["pblk", "appnvm"]
    assert _stacks((), ("oxftl.template:PageFtl",), "both") == ["oxftl.template:PageFtl@host",
                                                                "oxftl.template:PageFtl@device"]
    got = _stacks(("pblk", f"{TEMPLATE}@host"), (TEMPLATE,), "both")
    assert got == ["pblk", f"{TEMPLATE}@host", f"{TEMPLATE}@device"]
    assert _stacks(("appnvm",), (TEMPLATE,), "device") == ["appnvm", f"{TEMPLATE}@device"]


def test_a_relative_ftl_file_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "my_ftl.py").write_text(Path(oxftl.template.__file__).read_text())
    monkeypatch.chdir(tmp_path)
    assert _stacks(("my_ftl.py:PageFtl@device",), (), "both") == [f"{tmp_path / 'my_ftl.py'}:PageFtl@device"]


def test_two_ftls_of_one_class_name_get_names_of_their_files():
    got = names(["pblk", "/x/v1.py:MyFtl@host", "/y/v2.py:MyFtl@host", "/y/v2.py:MyFtl@device"])
    assert list(got.values()) == ["pblk", "v1.MyFtl@host", "v2.MyFtl@host", "MyFtl@device"]
    modes = {n: m for m, n in got.items()}
    assert placement_pairs(modes) == [dict(ftl="v2.MyFtl", host="v2.MyFtl@host", device="MyFtl@device")]


@pytest.mark.parametrize("args, opt, words", [
    (["--stack", "pbkl"], "--stack", "unknown mode 'pbkl'"),
    (["--stack", "appnvm+2.0"], "--stack", "no interface to choose"),
    (["--stack", "nosuch.py:PageFtl@host"], "--stack", "nosuch.py: no such file"),
    (["--ftl", "oxftl.template:NoSuch"], "--ftl", "has no NoSuch"),
])
def test_a_bad_stack_is_one_usage_line_and_writes_nothing(tmp_path, args, opt, words):
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), *args])
    line = _one_line(res, 2)
    assert opt in line and words in line, line
    assert not out.exists()


def test_a_stack_that_cannot_open_is_refused_before_any_work(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("from oxftl.template import PageFtl\n\n"
                      "class Broken(PageFtl):\n"
                      "    def open(self):\n"
                      "        raise RuntimeError('the map does not fit')\n")
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out),
                                    "--stack", "pblk", "--ftl", f"{broken}:Broken"])
    line = _one_line(res, 1)
    assert line.startswith("ox: error: stack Broken@host: ") and "the map does not fit" in line, line
    assert not out.exists()


def _attributes(path: Path) -> set[str]:
    return {n.attr for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Attribute)}


def test_compare_never_reaches_into_pblk():
    for path in sorted(COMPARE.glob("*.py")):
        assert not _attributes(path) & PBLK_INTERNALS, (path.name, _attributes(path) & PBLK_INTERNALS)
        tree = ast.parse(path.read_text())
        for n in ast.walk(tree):
            if isinstance(n, ast.ImportFrom):
                assert "pblk" not in (n.module or ""), path.name


def _imports(path: Path) -> set[str]:
    """The modules of the compare package a module imports, at any depth of its code."""
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.level == 1:
            out |= {n.module.split(".")[0]} if n.module else {a.name for a in n.names}
    return out


def test_compare_modules_import_one_another_one_way():
    graph = {p.stem: _imports(p) for p in COMPARE.glob("*.py")}
    assert "report" in graph["runner"] and "runner" not in graph["report"] | graph["figures"]
    state: dict[str, int] = {}

    def visit(m, path):
        if state.get(m) == 1:
            raise AssertionError("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) == 2:
            return
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            visit(d, path + [m])
        state[m] = 2
    for m in sorted(graph):
        visit(m, [])


@pytest.mark.parametrize("mode", ["pblk", "pblk+2.0", "appnvm", "zoned", "oxftl.template:PageFtl@host",
                                  "oxftl.template:PageFtl@device"])
def test_every_block_device_answers_the_measuring_surface(mode):
    cfg = Config.load(None, TINY)
    with open_stack(mode, volatile=True, config=cfg) as st:
        bdev, geo = st.blockdev, st.geometry
        data = np.arange(64 * 4096, dtype=np.uint32).view(np.uint8)[:64 * 4096]
        bdev.write(0, data)
        bdev.flush()
        params = bdev.ftl_params()
        assert params["capacity_bytes"] == bdev.size
        valid = bdev.block_valid_sectors()
        buf = bdev.host_buffer()
        if mode.startswith("pblk"):
            assert valid.shape == (geo.total_luns, geo.nblocks) and valid.sum() == 64
            assert buf.entries == params["write_buffer_entries"] and buf.drained >= 64
            assert buf.buffered == 0 and buf.gc_moved == 0
        else:                                   # nothing to read on this side, or an FTL's own map
            assert valid is None and buf is None
        if mode == "appnvm":
            assert st.machine.block_valid_sectors().sum() == 64       # the device's FTL counts them
        if mode.endswith("@host"):
            assert params["ftl"] == "template" and params["lun_range"] == [0, geo.total_luns - 1]
        if mode == "zoned":                     # zones span the device: no LUN range to name
            assert params["ftl"] == "zoned" and params["lun_range"] is None
        assert (bdev.read(0, data.nbytes) == data).all()


FIO = """
[global]
bs=4k
size=4m
[w]
rw=randwrite
number_ios=300
iodepth=4
[r]
stonewall
rw=randread
number_ios=300
iodepth=8
"""


def test_a_fio_job_runs_on_the_ftl_on_both_sides_every_read_checked(tmp_path):
    job = tmp_path / "small.fio"
    job.write_text(FIO)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["compare", "--quick", "--no-progress", "--out", str(out), "--fio-job", str(job),
                                    "--set", "geometry.nblocks=16", "--set", "geometry.npages=16",
                                    "--ftl", "oxftl.template:PageFtl"])
    assert res.exit_code == 0, res.output
    results = json.loads((out / "results.json").read_text())
    assert list(results["stacks"]) == ["PageFtl@host", "PageFtl@device"]
    for name, wls in results["stacks"].items():
        r = wls["small"]["8"]
        assert r["verified_reads"] == r["reads"] == 300 and r["mismatches"] == 0, name
    host, dev = (results["stacks"][n]["small"]["8"] for n in ("PageFtl@host", "PageFtl@device"))
    assert host["media_bytes_programmed"] == dev["media_bytes_programmed"] > 0
    # reads of sectors never written: the FTL in the host answers zeros itself, the one in the
    # device still gets a command per read
    assert host["phases"][1]["nvme_cmds"] < dev["phases"][1]["nvme_cmds"] == 301
    assert "## Placement: PageFtl in the host and in the device" in (out / "report.md").read_text()


def test_a_sweep_of_ftl_op_leaves_a_plug_in_ftl_where_it_is():
    plan = Plan.quick(Config.load(None, ["geometry.nblocks=16", "geometry.npages=16"]))
    cap = plan.config.exported_sectors() * 4096
    w = Workload("overwrite", "short overwrite", "overwrite", bs=16384, nbytes=cap, per_capacity=1.0,
                 prefill=True, samples=10)
    plan = plan.with_workloads([w])
    res = run_sweep(plan, sweep_points(plan.config, ["ftl.op=0.2,0.35"]), ("appnvm", "oxftl.template:PageFtl@device"),
                    1, False)
    lo, hi = res["sweep"]["points"]
    tpl = "PageFtl@device"
    assert lo["params"][tpl]["capacity_bytes"] == hi["params"][tpl]["capacity_bytes"]
    assert lo["stacks"][tpl]["write_amplification"] == hi["stacks"][tpl]["write_amplification"] > 1
    assert lo["params"]["appnvm"]["capacity_bytes"] > hi["params"]["appnvm"]["capacity_bytes"]
    for p in (lo, hi):
        assert all(s["mismatches"] == 0 for s in p["stacks"].values())


@pytest.mark.parametrize("mode, words", [
    ("pblk", "host FTL (pblk over open-channel)"),
    ("pblk+2.0", "host FTL (pblk over open-channel) through OCSSD 2.0 chunks"),
    ("zoned", "plug-in FTL oxftl.zoned:ZonedFtl in the host, over the zones of a zoned namespace"),
    ("oxftl.template:PageFtl@device", "plug-in FTL oxftl.template:PageFtl in the device, behind a plain NVMe namespace"),
])
def test_the_report_names_each_stack_by_where_it_runs_and_what_it_speaks(mode, words):
    from oxhost.compare.stacks import describe
    assert describe(mode) == words
