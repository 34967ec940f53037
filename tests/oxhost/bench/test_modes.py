"""`ox bench --modes` takes stack modes as `ox compare --stack` does -- pblk, appnvm, plug-in
FTLs on either side -- and turns each into the `ox mount` options that serve it, a
directory name and its figures' prefix; a bad mode is one usage line before anything is
mounted. Under a second."""
import pytest
from click.testing import CliRunner

from oxhost.bench import suite
from oxhost.bench.modes import mount_args, prefix, slug
from oxhost.cli import main


@pytest.mark.parametrize("mode, args, name, pre", [
    ("pblk", ["--mode", "pblk"], "pblk", ""),
    ("appnvm", ["--mode", "appnvm"], "appnvm", "appnvm_"),
    ("pblk+2.0", ["--mode", "pblk", "--spec", "2.0"], "pblk_2.0", "pblk_2.0_"),
    ("/x/my_ftl.py:MyFtl@host", ["--ftl", "/x/my_ftl.py:MyFtl", "--side", "host"], "myftl_host", "myftl_host_"),
    ("oxftl.template:PageFtl@device", ["--ftl", "oxftl.template:PageFtl", "--side", "device"], "pageftl_device",
     "pageftl_device_"),
])
def test_a_stack_mode_becomes_mount_options_a_name_and_a_prefix(mode, args, name, pre):
    assert mount_args(mode) == args and slug(mode) == name and prefix(mode) == pre


def test_bench_modes_take_plug_in_ftls(monkeypatch):
    got = {}
    monkeypatch.setattr(suite, "run", lambda **kw: got.update(kw))
    res = CliRunner().invoke(main, ["bench", "--modes", "pblk, oxftl.template:PageFtl@host,pblk"])
    assert res.exit_code == 0, res.output
    assert got["modes"] == ["pblk", "oxftl.template:PageFtl@host"]


@pytest.mark.parametrize("modes, words", [
    ("pblk,pbkl", "unknown mode 'pbkl'"),
    ("oxftl.template:NoSuch@host", "has no NoSuch"),
    ("/a/f.py:X@host,/b/f.py:X@host", None),
])
def test_a_bad_bench_mode_is_one_usage_line(monkeypatch, tmp_path, modes, words):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "f.py").write_text("from oxftl.template import PageFtl as X\n")
    modes = modes.replace("/a/", f"{tmp_path}/a/").replace("/b/", f"{tmp_path}/b/")
    monkeypatch.setattr(suite, "run", lambda **kw: pytest.fail("ran"))
    res = CliRunner().invoke(main, ["bench", "--modes", modes])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert "--modes" in res.stderr and (words or "share the name 'x_host'") in res.stderr, res.stderr
