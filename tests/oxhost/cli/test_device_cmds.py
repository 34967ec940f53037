"""`ox dev/addr/vblk/bbt` against a persistent disk file, as nvm_* tools are used."""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from click.testing import CliRunner

from oxhost.cli import main

SMALL = ["--geometry", "2x2x8x16"]


@pytest.fixture
def ox(tmp_path):
    """Runs `ox ARGS --disk D [--geometry small]`; the disk is made by `ox format` first (the
    commands never create media on their own)."""
    runner = CliRunner()
    disk = str(tmp_path / "ox.disk")

    def run(*args, ok=True, geometry=True):
        if not os.path.exists(disk):
            made = runner.invoke(main, ["format", "--mode", "pblk", "--yes", "--disk", disk]
                                 + (SMALL if geometry else []))
            assert made.exit_code == 0, made.output
        argv = list(args) + ["--disk", disk] + (SMALL if geometry else [])
        res = runner.invoke(main, argv)
        if ok:
            assert res.exit_code == 0, (argv, res.output, res.stderr)
        return res
    run.disk = disk
    run.runner = runner
    return run


def page_addrs(ch, lun, blk, pg, nplanes=2, nsec=4):
    return [f"{ch}:{lun}:{pl}:{blk}:{pg}:{s}" for pl in range(nplanes) for s in range(nsec)]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_dev_info_prints_one_name_value_per_line(ox):
    out = ox("dev", "info", geometry=False).stdout
    info = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert info["nchannels"] == "8" and info["nluns"] == "4" and info["nblocks"] == "32"
    assert info["npages"] == "128" and info["nplanes"] == "2" and info["sector_nbytes"] == "4096"
    assert info["pmode"] == "DUAL" and info["pci_ids"] == "1d1d:1f1f"
    assert info["ppaf"] == "ch 17/3 lun 15/2 pl 2/1 blk 10/5 pg 3/7 sec 0/2"
    assert int(info["tprt_ns"]) > int(info["trdt_ns"]) > 0


def test_addr_commands_share_media_through_the_disk_file(ox, tmp_path):
    data = np.random.default_rng(7).integers(0, 256, 8 * 4096, dtype=np.uint8)
    src = tmp_path / "in.bin"
    data.tofile(src)
    ox("addr", "erase", "0:1:0:5", "0:1:1:5")
    ox("addr", "write", *page_addrs(0, 1, 5, 0), "--input", str(src), "--meta", "3")
    out = tmp_path / "out.bin"
    res = ox("addr", "read", *page_addrs(0, 1, 5, 0), "--output", str(out), "--meta")
    assert np.array_equal(np.fromfile(out, dtype=np.uint8), data)
    metas = [line for line in res.stdout.splitlines() if line.startswith("meta ")]
    assert len(metas) == 8 and all(len(m.rsplit(": ", 1)[1]) == 32 for m in metas)


def test_read_of_unwritten_page_fails_with_one_line_and_0x42FF(ox):
    ox("addr", "erase", "1:0:0:2", "1:0:1:2")
    res = ox("addr", "read", "1:0:0:2:0:0", ok=False)
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "0x42FF" in res.stderr and res.stderr.startswith("ox: error:")


def test_rewriting_a_programmed_page_fails_with_0x40FF(ox):
    ox("addr", "erase", "0:0:0:1", "0:0:1:1")
    ox("addr", "write", *page_addrs(0, 0, 1, 0))
    res = ox("addr", "write", *page_addrs(0, 0, 1, 0), ok=False)
    assert res.exit_code == 1 and "0x40FF" in res.stderr


def test_out_of_geometry_address_is_refused_before_any_io(ox):
    res = ox("addr", "read", "0:7:0:0:0:0", ok=False)
    assert res.exit_code == 1 and "outside the device geometry (lun)" in res.stderr
    res = ox("addr", "read", "nonsense", ok=False)
    assert res.exit_code == 2 and "CH:LUN:PL:BLK:PG:SEC" in res.output + res.stderr


def test_gen2dev_and_dev2gen_round_trip(ox):
    res = ox("addr", "gen2dev", "1:1:1:7:15:3", geometry=False)
    dev = res.stdout.split("dev ")[1].strip()
    assert int(dev, 16) == (1 << 17) | (1 << 15) | (1 << 2) | (7 << 10) | (15 << 3) | 3
    back = ox("addr", "dev2gen", dev, geometry=False).stdout
    assert "ch(01), lun(01), pl(1), blk(0007), pg(015), sec(3)" in back


def test_vblk_line_write_read_round_trip(ox, tmp_path):
    # line over 2 ch x 2 lun on the small geometry: 4 blocks x 16 pages x 32 KiB = 2 MiB
    data = np.random.default_rng(1).integers(0, 256, 2 << 20, dtype=np.uint8)
    src, out = tmp_path / "in.bin", tmp_path / "out.bin"
    data.tofile(src)
    ox("vblk", "line-erase", "0", "1", "0", "1", "3")
    ox("vblk", "line-write", "0", "1", "0", "1", "3", "--input", str(src))
    ox("vblk", "line-read", "0", "1", "0", "1", "3", "--output", str(out))
    assert np.array_equal(np.fromfile(out, dtype=np.uint8), data)


def test_vblk_pad_programs_the_rest_of_a_partly_written_block(ox):
    ox("vblk", "erase", "1:1:0:6")
    ox("addr", "write", *page_addrs(1, 1, 6, 0))
    ox("vblk", "pad", "1:1:0:6")
    res = ox("addr", "read", "1:1:0:6:15:3")       # last page: programmed with zeros
    assert "0 non-zero bytes" in res.stdout


def test_bbt_mark_and_set_are_seen_by_get_and_persist(ox):
    ox("bbt", "mark", "bad", "0:1:0:3", "0:1:1:3")
    ox("bbt", "set", "0", "1", "host", "--blocks", "5-6")
    out = ox("bbt", "get", "0", "1").stdout
    assert "blk(0003) pl(0) state(BAD)" in out and "blk(0003) pl(1) state(BAD)" in out
    assert "blk(0005) pl(0) state(HOST)" in out and "blk(0006) pl(1) state(HOST)" in out
    assert "nbad(2)" in out and "nhmrk(4)" in out
    res = ox("addr", "erase", "0:1:0:3", "0:1:1:3", ok=False)
    assert res.exit_code == 1 and "0x40FF" in res.stderr


def test_debug_prints_the_controller_trace(ox):
    ox("addr", "erase", "0:0:0:4", "0:0:1:4")
    res = ox("addr", "write", *page_addrs(0, 0, 4, 0), "--debug")
    assert "IO CMD 0x91, nsid: 1" in res.stderr and "Number of sectors: 8" in res.stderr
    assert "MMGR_CMD type: 0x3 submitted to VOLT." in res.stderr


def test_disk_file_of_another_geometry_is_refused_and_left_unchanged(ox):
    ox("dev", "info")                     # creates a small-geometry file
    before = sha(ox.disk)
    res = ox("dev", "info", "--geometry", "8x4x32x128", ok=False, geometry=False)
    assert res.exit_code == 1 and "holds geometry" in res.stderr
    assert sha(ox.disk) == before


def test_corrupt_disk_file_is_refused_and_left_unchanged(ox):
    ox("dev", "info")
    with open(ox.disk, "r+b") as f:
        f.seek(20)
        f.write(b"\xff")
    before = sha(ox.disk)
    res = ox("addr", "read", "0:0:0:0:0:0", ok=False)
    assert res.exit_code == 1 and "corrupt" in res.stderr and res.stderr.count("\n") == 1
    assert sha(ox.disk) == before


def test_cli_errors_are_one_line_without_traceback_in_a_real_process(tmp_path):
    env = dict(os.environ)
    env.pop("OX_TRACEBACK", None)
    disk = str(tmp_path / "x.disk")
    ox_cmd = [sys.executable, "-c", "from oxhost.cli import main; main()"]
    subprocess.run([*ox_cmd, "format", "--mode", "pblk", "--yes", "--disk", disk, *SMALL],
                   check=True, capture_output=True, env=env, timeout=60)
    p = subprocess.run([*ox_cmd, "addr", "read", "0:0:0:0:0:0", "--disk", disk, *SMALL],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "0x42FF" in p.stderr


def test_commands_that_read_never_create_media(tmp_path):
    runner = CliRunner()
    missing = tmp_path / "typo.disk"
    for argv in (["dev", "info"], ["addr", "read", "0:0:0:0:0:0"], ["bbt", "get", "0", "0"],
                 ["vblk", "read", "0:0:0:1"]):
        res = runner.invoke(main, [*argv, "--disk", str(missing)])
        assert res.exit_code == 1 and "no such disk file" in res.stderr and "ox format" in res.stderr
        assert res.stderr.count("\n") == 1
    res = runner.invoke(main, ["addr", "erase", "0:0:0:1", "--disk", str(missing), *SMALL])
    assert res.exit_code == 1 and "--create" in res.stderr
    assert not missing.exists()
    res = runner.invoke(main, ["addr", "erase", "0:0:0:1", "0:0:1:1", "--disk", str(missing), *SMALL,
                               "--create"])
    assert res.exit_code == 0 and missing.exists()


def test_read_commands_open_the_disk_read_only_and_leave_it_byte_identical(ox):
    ox("addr", "erase", "0:0:0:1", "0:0:1:1")
    ox("addr", "write", *page_addrs(0, 0, 1, 0))
    before, mtime = sha(ox.disk), os.stat(ox.disk).st_mtime_ns
    ox("dev", "info")
    ox("addr", "read", *page_addrs(0, 0, 1, 0))
    ox("bbt", "get", "0", "0")
    assert sha(ox.disk) == before and os.stat(ox.disk).st_mtime_ns == mtime


def test_dev_info_works_on_a_disk_file_the_user_cannot_write(ox, tmp_path):
    """As another user, on a 0644 root-owned file: only a read-only open can work."""
    from tests.conftest import require, require_tools
    require(os.geteuid() == 0, "root (to act as another user)")
    require_tools("setpriv")
    ox("addr", "erase", "0:0:0:1", "0:0:1:1")
    base = tempfile.mkdtemp(prefix="ox-ro-")            # pytest's tmp is root-only
    try:
        os.chmod(base, 0o755)
        disk = shutil.copy(ox.disk, os.path.join(base, "ox.disk"))
        os.chmod(disk, 0o644)
        before = sha(disk)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c", "from oxhost.cli import main; main()", "dev", "info",
                            "--disk", disk], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, HOME="/tmp"), cwd=base)
        assert p.returncode == 0, p.stderr
        assert "holds: a pblk volume on LUNs 0-3" in p.stdout
        assert "nchannels: 2" in p.stdout and sha(disk) == before
    finally:
        shutil.rmtree(base)


def test_dev_info_shows_the_media_label_of_an_appnvm_disk(tmp_path):
    runner = CliRunner()
    disk = str(tmp_path / "a.disk")
    assert runner.invoke(main, ["format", "--mode", "appnvm", "--yes", "--disk", disk, *SMALL]).exit_code == 0
    res = runner.invoke(main, ["dev", "info", "--disk", disk])
    assert res.exit_code == 0, res.output
    info = dict(line.split(": ", 1) for line in res.stdout.strip().splitlines())
    assert info["holds"].startswith("an AppNVM volume") and info["mode"].startswith("AppNVM")
    assert info["formatted"] != "never" and info["nchannels"] == "2"
    res = runner.invoke(main, ["addr", "read", "0:0:0:0:0:0", "--disk", disk])
    assert res.exit_code == 1 and "AppNVM" in res.stderr and res.stderr.count("\n") == 1
