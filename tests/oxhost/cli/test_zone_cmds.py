"""`ox zone` against a zoned disk file, as `zbd` and `nvme zns` are used against a drive."""
import hashlib
import json

import pytest
from click.testing import CliRunner

from oxhost.cli import main

SMALL = ["--geometry", "2x2x4x4"]        # 8 zones of 64 LBAs, 48 writable


@pytest.fixture
def zone(tmp_path):
    runner = CliRunner()
    disk = str(tmp_path / "z.disk")

    def run(*args, ok=True):
        res = runner.invoke(main, ["zone", *map(str, args), "--disk", disk])
        if ok:
            assert res.exit_code == 0, (args, res.output, res.stderr)
        return res
    made = runner.invoke(main, ["format", "--mode", "zoned", "--yes", "--disk", disk, *SMALL])
    assert made.exit_code == 0, made.output
    run.disk = disk
    return run


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_zone_append_prints_the_lba_and_read_and_report_see_it(zone):
    assert "appended 5 LBA(s) at LBA 192" in zone("append", 3, "--count", 5).output
    assert "at LBA 197" in zone("append", 3, "--count", 2, "--seed", 4).output
    rows = json.loads(zone("report", "--json").output)
    assert len(rows) == 8 and rows[3] == dict(zone=3, start=192, len=64, capacity=48, wp=199, state="closed",
                                              attrs=0)
    assert "28672 bytes" in zone("read", 192, "--count", 7).output
    info = zone("info").output
    assert "zones             8" in info and "48 LBAs" in info and "16 bytes of metadata" in info


def test_zone_actions_and_select_all(zone):
    zone("open", 1)                                      # each command ends with a shutdown: closed again
    zone("finish", 2)
    out = zone("report", "--state", "closed").output
    assert "    1 " in out and "1 zone(s)" in out
    zone("open", "--all")
    zone("finish", "--all")
    assert "full" in zone("report", "--zone", 1, "--count", 1).output
    zone("reset", "--all")
    assert "8 zone(s)" in zone("report", "--state", "empty").output


@pytest.mark.parametrize("args,words", [
    (("close", 0), "ZONE_INVALID_TRANSITION"),           # an empty zone cannot be closed
    (("open",), "give a ZONE number or --all"),
    (("open", 3, "--all"), "give a ZONE number or --all"),
    (("finish", 8), "zone 8 outside 0-7"),
    (("append", 9), "zone 9 outside 0-7"),
    (("report", "--zone", 8), "zone 8 outside 0-7"),
    (("read", 512), "beyond the namespace"),
])
def test_zone_mistakes_get_one_line_and_change_nothing(zone, args, words):
    before = _sha(zone.disk)
    res = zone(*args, ok=False)
    assert res.exit_code in (1, 2) and words in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert _sha(zone.disk) == before


def test_zone_commands_never_create_media_unless_asked(tmp_path):
    runner = CliRunner()
    disk = str(tmp_path / "none.disk")
    res = runner.invoke(main, ["zone", "report", "--disk", disk])
    assert res.exit_code == 1 and "no such disk file" in res.stderr and "--mode zoned" in res.stderr
    res = runner.invoke(main, ["zone", "append", "0", "--disk", disk, "--create", *SMALL])
    assert res.exit_code == 0 and "at LBA 0" in res.output


def test_zone_help_explains_every_command():
    runner = CliRunner()
    out = runner.invoke(main, ["zone", "--help"]).output
    for cmd in ("info", "report", "open", "close", "finish", "reset", "append", "read"):
        assert cmd in out
        assert runner.invoke(main, ["zone", cmd, "--help"]).exit_code == 0
