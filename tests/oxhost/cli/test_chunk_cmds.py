"""`ox chunk report|reset|write|read|copy` against a disk file of 2.0 media, as liblightnvm
2.x's nvm_cmd_* tools are used; 1.2 and 2.0 media refuse each other's commands."""
import hashlib
import os

import numpy as np
import pytest
from click.testing import CliRunner

from oxhost.cli import main

SMALL = ["--geometry", "2x2x8x16"]


@pytest.fixture
def ox(tmp_path):
    """Runs `ox ARGS --disk D`; the disk is made by `ox format --spec SPEC` first."""
    runner = CliRunner()
    disk = str(tmp_path / "ox.disk")

    def run(*args, ok=True, spec="2.0"):
        if not os.path.exists(disk):
            made = runner.invoke(main, ["format", "--mode", "pblk", "--spec", spec, "--yes", "--disk", disk] + SMALL)
            assert made.exit_code == 0, made.output
        res = runner.invoke(main, list(args) + ["--disk", disk])
        if ok:
            assert res.exit_code == 0, (args, res.output, res.stderr)
        return res
    run.disk = disk
    return run


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _report(ox, *extra):
    lines = ox("chunk", "report", *extra).stdout.splitlines()
    return {ln.split()[0]: ln.split()[1:] for ln in lines[1:-1]}, lines[-1]


def test_format_spec_2_0_gives_free_chunks_and_dev_info_the_2_0_geometry(ox):
    rows, summary = _report(ox)
    assert len(rows) == 32 and summary.startswith("32 of 32 chunk(s) shown; 32 free")
    info = dict(ln.split(": ", 1) for ln in ox("dev", "info").stdout.strip().splitlines())
    assert info["mode"].startswith("open-channel (Open-Channel SSD 2.0")
    assert (info["npugrp"], info["npunit"], info["nchunk"], info["nsectr"]) == ("2", "2", "8", "128")
    assert (info["ws_min"], info["ws_opt"], info["mw_cunits"]) == ("8", "16", "16")     # an eighth of a chunk


def test_write_then_read_through_the_disk_file_with_oob(ox, tmp_path):
    data = np.random.default_rng(3).integers(0, 256, 48 * 4096, dtype=np.uint8)
    src = tmp_path / "in.bin"
    data.tofile(src)
    out = ox("chunk", "write", "1:0:4", "--count", "48", "--input", str(src), "--meta", "5").stdout
    assert "write pointer 48" in out
    dst = tmp_path / "out.bin"
    res = ox("chunk", "read", "1:0:4:0", "--count", "16", "--output", str(dst), "--meta")
    assert np.array_equal(np.fromfile(dst, np.uint8), data[:16 * 4096])
    assert sum(1 for ln in res.stdout.splitlines() if ln.startswith("meta 1:0:4:")) == 16
    rows, _ = _report(ox, "--state", "open")
    assert rows == {"1:0:4": ["open", "seq", "0", "0x0000000a00", "128", "48"]}


def test_reads_inside_the_write_cache_fail_with_one_line_and_0x4287(ox):
    ox("chunk", "write", "0:0:1", "--count", "16")
    res = ox("chunk", "read", "0:0:1:0", ok=False)
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "0x4287" in res.stderr


def test_reset_of_a_free_chunk_is_refused_and_a_closed_one_freed(ox):
    res = ox("chunk", "reset", "0:1:2", ok=False)
    assert res.exit_code == 1 and "0x42C1" in res.stderr and res.stderr.startswith("ox: error:")
    ox("chunk", "write", "0:1:2", "--count", "128")
    assert "reset 0:1:2: free, wear index 0" in ox("chunk", "reset", "0:1:2").stdout
    assert _report(ox, "--chunk", "0:1:2", "--count", "1")[0]["0:1:2"][0] == "free"


def test_copy_inside_the_device_lands_at_the_destination_write_pointer(ox, tmp_path):
    ox("chunk", "write", "0:0:0", "--count", "128", "--seed", "9")
    ox("chunk", "write", "1:1:7", "--count", "8")
    assert "to 1:1:7:8" in ox("chunk", "copy", "0:0:0:16", "1:1:7", "--count", "16").stdout
    ox("chunk", "write", "1:1:7", "--count", "104")
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    ox("chunk", "read", "0:0:0:16", "--count", "16", "--output", str(a))
    ox("chunk", "read", "1:1:7:8", "--count", "16", "--output", str(b))
    assert a.read_bytes() == b.read_bytes()


def test_a_write_not_at_the_write_pointer_is_out_of_order_0x42F2(ox):
    ox("chunk", "write", "0:1:5", "--count", "16")
    res = ox("chunk", "write", "0:1:5:0", "--count", "8", ok=False)
    assert res.exit_code == 1 and "0x42F2" in res.stderr


def test_bad_addresses_are_one_line_usage_errors(ox):
    for args in (["chunk", "read", "0:0"], ["chunk", "reset", "x:y:z"]):
        res = ox(*args, ok=False)
        assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.stderr
    res = ox("chunk", "reset", "0:0:8", ok=False)
    assert res.exit_code == 1 and "outside the device geometry (chunk)" in res.stderr


def test_1_2_commands_refuse_2_0_media_and_2_0_commands_refuse_1_2_media_byte_identical(tmp_path):
    runner = CliRunner()
    for spec, foreign in (("2.0", ["addr", "read", "0:0:0:0"]), ("1.2", ["chunk", "report"])):
        disk = str(tmp_path / f"{spec}.disk")
        assert runner.invoke(main, ["format", "--mode", "pblk", "--spec", spec, "--yes", "--disk", disk]
                             + SMALL).exit_code == 0
        if spec == "2.0":
            assert runner.invoke(main, ["chunk", "write", "0:0:0", "--disk", disk]).exit_code == 0
        before = sha(disk)
        for args in (foreign, ["vblk", "erase", "0:0:0:1", "0:0:1:1"] if spec == "2.0" else
                     ["chunk", "write", "0:0:0"]):
            res = runner.invoke(main, args + ["--disk", disk])
            assert res.exit_code == 1 and res.stderr.count("\n") == 1, res.stderr
            assert "refusing to use it through interface" in res.stderr
        assert sha(disk) == before


def test_commands_that_read_never_create_media(tmp_path):
    disk = str(tmp_path / "none.disk")
    res = CliRunner().invoke(main, ["chunk", "report", "--disk", disk])
    assert res.exit_code == 1 and "no such disk file" in res.stderr and not os.path.exists(disk)


def test_format_refuses_spec_2_0_for_appnvm(tmp_path):
    res = CliRunner().invoke(main, ["format", "--mode", "appnvm", "--spec", "2.0", "--yes",
                                    "--disk", str(tmp_path / "a.disk")])
    assert res.exit_code == 1 and "--spec is for pblk" in res.stderr
