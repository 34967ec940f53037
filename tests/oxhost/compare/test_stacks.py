"""`ox compare` takes any stack and measures every one the same way: --stack and --placement
are checked before anything runs (one error line, nothing written), the stacks' short names
stay unique, compare's modules read block devices only through their measuring surface
(stats, ftl_params, block_valid_sectors, host_buffer) and import one another one way, and
every block device answers that surface. About 5 s in all."""
import ast
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import oxftl.template
from oxhost.cli import main
from oxhost.cli.compare_cmds import _stacks
from oxhost.compare.stacks import names, placement_pairs
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


def test_placement_adds_the_ftl_on_both_sides_after_the_stacks_each_once():
    assert _stacks((), ()) == ["pblk", "appnvm"]
    assert _stacks((), ("oxftl.template:PageFtl",)) == ["oxftl.template:PageFtl@host",
                                                        "oxftl.template:PageFtl@device"]
    got = _stacks(("pblk", f"{TEMPLATE}@host"), (TEMPLATE,))
    assert got == ["pblk", f"{TEMPLATE}@host", f"{TEMPLATE}@device"]


def test_a_relative_ftl_file_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "my_ftl.py").write_text(Path(oxftl.template.__file__).read_text())
    monkeypatch.chdir(tmp_path)
    assert _stacks(("my_ftl.py:PageFtl@device",), ()) == [f"{tmp_path / 'my_ftl.py'}:PageFtl@device"]


def test_two_ftls_of_one_class_name_get_names_of_their_files():
    got = names(["pblk", "/x/v1.py:MyFtl@host", "/y/v2.py:MyFtl@host", "/y/v2.py:MyFtl@device"])
    assert list(got.values()) == ["pblk", "v1.MyFtl@host", "v2.MyFtl@host", "MyFtl@device"]
    modes = {n: m for m, n in got.items()}
    assert placement_pairs(modes) == [dict(ftl="v2.MyFtl", host="v2.MyFtl@host", device="MyFtl@device")]


@pytest.mark.parametrize("args, opt, words", [
    (["--stack", "pbkl"], "--stack", "unknown mode 'pbkl'"),
    (["--stack", "appnvm+2.0"], "--stack", "no interface to choose"),
    (["--stack", "nosuch.py:PageFtl@host"], "--stack", "nosuch.py: no such file"),
    (["--placement", "oxftl.template:NoSuch"], "--placement", "has no NoSuch"),
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
                                    "--stack", "pblk", "--placement", f"{broken}:Broken"])
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


@pytest.mark.parametrize("mode", ["pblk", "appnvm", "oxftl.template:PageFtl@host", "oxftl.template:PageFtl@device"])
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
        if mode == "pblk":
            assert valid.shape == (geo.total_luns, geo.nblocks) and valid.sum() == 64
            assert buf.entries == params["write_buffer_entries"] and buf.drained >= 64
            assert buf.buffered == 0 and buf.gc_moved == 0
        else:                                   # nothing to read on this side, or an FTL's own map
            assert valid is None and buf is None
        if mode == "appnvm":
            assert st.machine.block_valid_sectors().sum() == 64       # the device's FTL counts them
        if mode.endswith("@host"):
            assert params["ftl"] == "template" and params["lun_range"] == [0, geo.total_luns - 1]
        assert (bdev.read(0, data.nbytes) == data).all()
