"""pblk on Open-Channel SSD 2.0, as Linux 4.17+ pblk ran on it: write units of ws_opt, bad
blocks from chunk metadata, free chunks not reset again, a write buffer that keeps the
last mw_cunits sectors of every open chunk readable, recovery from chunk states and write
pointers (open chunks padded out of the device's cache); 1.2 pblk unchanged beside it."""
import json
import subprocess
import sys

import numpy as np
import pytest

from oxemu import Faults, Machine
from oxemu.wire import ChunkState
from oxhost.lightnvm import Device
from oxhost.lightnvm2 import ChunkAddr, Device20
from oxhost.pblk import Pblk
from oxhost.pblk.ocssd2 import ChunkDevice

from .conftest import SECTOR, small_geometry, stamp


@pytest.fixture
def make20(make_machine, tmp_path):
    """make20(**Machine kw) -> Pblk over a 2.0 device on one disk file (reopened by calling
    it again after the machine is closed)."""
    path = str(tmp_path / "ox20.disk")

    def make(**kw):
        m = make_machine(geometry=small_geometry(), volt=0, disk=path, ram_mib=64, spec="2.0", **kw)
        p = Pblk(ChunkDevice(Device20.open(m)))
        p.machine = m
        return p
    return make


def test_the_2_0_target_writes_ws_opt_units_and_exports_what_1_2_pblk_exports(make20, make_pblk):
    p20 = make20()
    g = p20.dev.geo20
    assert p20.lg.unit_secs == g.ws_opt == 16 and p20.lg.sec_per_chunk == g.nsectr
    assert p20.size == make_pblk().size
    assert p20.rb.keep == (g.mw_cunits + g.ws_opt) * 4 and p20.rb.n == 2048 + p20.rb.keep


def test_sectors_the_device_still_caches_are_read_from_the_write_buffer(make20):
    p = make20()
    p.write_sectors(0, stamp(0, 64, tag=3))
    p.flush()                                          # on media, inside the device's write cache
    with pytest.raises(Exception):
        p.dev.dev20.read(p.lg.addr_ppas(p.l2p.map[:1]))
    assert (p.read_sectors(0, 64) == stamp(0, 64, tag=3)).all()
    assert p.c["ring_reads"] > 0
    assert (p.read_sectors(5, 1) == stamp(5, 1, tag=3)).all()     # the 4 KiB path too


def test_an_unclean_stop_pads_the_open_line_and_recovers_every_flushed_sector(make20):
    p = make20()
    p.write_sectors(100, stamp(100, 40, tag=7))
    p.flush()
    p.machine.close()                                  # kill -9: no close, the ring is gone
    p = make20()
    assert p.recovery["padded_pages"] > 0
    assert (p.read_sectors(100, 40) == stamp(100, 40, tag=7)).all()
    states, _ = p.dev.chunk_report(0, 0)
    assert ChunkState.OPEN in states.tolist()          # writing goes on in the recovered line
    p.write_sectors(100, stamp(100, 8, tag=8))
    p.close()
    p.machine.close()
    p = make20()
    assert (p.read_sectors(100, 8) == stamp(100, 8, tag=8)).all()
    assert (p.read_sectors(108, 32) == stamp(108, 32, tag=7)).all()


def test_free_chunks_are_not_reset_again_and_gc_turns_lines_over(make20):
    p = make20()
    n = p.size // SECTOR
    rng = np.random.default_rng(1)
    for i in range(4 * n // 64):
        lba = int(rng.integers(0, n - 64))
        p.write_sectors(lba, stamp(lba, 64, tag=i))
    p.flush()
    assert p.c["gc_runs"] > 0 and p.dev.counters["skipped_resets"] > 0
    report = p.dev.dev20.rprt()
    assert (report["wli"] >= 0).all() and (report["cs"] != ChunkState.OFFLINE).all()
    p.check()


def test_a_chunk_whose_program_failed_goes_offline_and_stays_bad(make20):
    p = make20(faults=Faults(program_fail={(1, 0, 0, 2)}))    # line 0, LUN index of ch 1 lun 0
    n = p.size // SECTOR
    for i in range(3):
        for lba in range(0, n - 256, 256):
            p.write_sectors(lba, stamp(lba, 256, tag=i))
    p.flush()
    assert p.c["write_failed"] > 0
    p.close()
    p.machine.close()
    p = make20()
    d = p.dev.dev20.rprt(ChunkAddr(1, 0, 0), 1)[0]
    li = p.lg.luns.index((1, 0))
    assert (d["cs"] == ChunkState.OFFLINE) == bool(p.lm.bad_blk[0, li])
    for lba in range(0, n - 256, 256):
        assert (p.read_sectors(lba, 256) == stamp(lba, 256, tag=2)).all()


def test_pblk_1_2_and_2_0_are_told_apart_by_the_device_they_are_given(make_machine):
    m = make_machine(geometry=small_geometry(), spec="2.0")
    with pytest.raises(Exception, match="2.0"):
        Device.open(m)                                  # a 1.2 library on a 2.0 device
    m2 = make_machine(geometry=small_geometry())
    p = Pblk(Device.open(m2))
    assert p.rb.keep == 0 and p.lg.unit_secs == 8


def test_ox_torture_quick_on_pblk_2_0_reports_zero_violations(tmp_path):
    """The product command on 2.0: 40 cuts (targeted, in recovery, random), every sector
    checked after each, the whole volume overwritten at the end."""
    out = tmp_path / "torture.json"
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", "--stack", "pblk+2.0", "--quick",
                        "--no-progress", "--json", str(out), "--dir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(out.read_text())["pblk+2.0"]
    assert rep["cuts"] == 40 and rep["violations"] == [] and rep["final_overwrite"] == "ok"
    assert rep["targeted_cuts"] > 0 and rep["recovery_cuts"] > 0
