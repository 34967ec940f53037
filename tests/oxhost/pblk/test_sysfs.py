"""pblk's sysfs files: Linux's text formats (pblk-sysfs.c) filled from a real target over the
emulated bus, the two resets and the forced GC."""
import re

import numpy as np
import pytest

from oxhost.pblk import PblkError, PblkSysfs
from oxhost.pblk.lines import LineState
from oxhost.pblk.sysfs import parse_uint, write_amp

from .conftest import stamp


@pytest.fixture
def sysfs(pblk):
    return PblkSysfs(pblk)


def text(sysfs, name) -> str:
    return sysfs.show(name).decode()


def test_sysfs_lists_pblk_files_with_their_sysfs_modes(sysfs):
    assert set(sysfs.files) == {"write_luns", "rate_limiter", "errors", "gc_state", "gc_force",
                                "write_buffer", "ppa_format", "lines", "lines_info",
                                "write_amp_mileage", "write_amp_trip", "padding_dist"}
    assert sysfs.name == "pblk"
    assert {n: sysfs.mode(n) for n in ("lines", "gc_force", "write_amp_trip", "padding_dist")} == \
        {"lines": 0o444, "gc_force": 0o200, "write_amp_trip": 0o644, "padding_dist": 0o644}
    assert sysfs.show("gc_force") == b""


def test_sysfs_write_amp_prints_pblk_decimal_or_nan():
    assert write_amp(0, 0, 0) == b"user:0 gc:0 pad:0 WA:NaN\n"
    assert write_amp(3, 1, 0) == b"user:3 gc:1 pad:0 WA:1.33333\n"        # truncated, as div64
    assert write_amp(100000, 12345, 0) == b"user:100000 gc:12345 pad:0 WA:1.12345\n"
    assert write_amp(7, 0, 0) == b"user:7 gc:0 pad:0 WA:1.00000\n"


def test_sysfs_fresh_target_in_pblk_formats(sysfs):
    assert text(sysfs, "write_amp_mileage") == "user:0 gc:0 pad:0 WA:NaN\n"
    assert text(sysfs, "write_amp_trip") == "user:0 gc:0 pad:0 WA:NaN\n"
    assert text(sysfs, "padding_dist") == "0:0 1:0 2:0 3:0 4:0 5:0 6:0 7:0 \n"
    assert text(sysfs, "gc_state") == "gc_enabled=1, gc_active=0\n"
    assert text(sysfs, "errors") == ("read_failed=0, read_high_ecc=0, read_empty=0, read_failed_gc=0, "
                                     "write_failed=0, erase_failed=0\n")
    assert text(sysfs, "write_luns") == ("pblk: pos:0, ch:0, lun:0 - 0\npblk: pos:1, ch:1, lun:0 - 0\n"
                                         "pblk: pos:2, ch:0, lun:1 - 0\npblk: pos:3, ch:1, lun:1 - 0\n")
    assert text(sysfs, "lines_info") == ("smeta - len:32768, secs:8\n"
                                         "emeta - len:32768, sec:8, bb_start:72\n"
                                         "bitmap lengths: sec:64, blk:8, lun:8\n"
                                         "blk_line:4, sec_line:512, sec_blk:128\n")
    # pblk's line format: sector, plane, channel, LUN, page, block from bit 0; then the device's
    assert text(sysfs, "ppa_format") == ("g:(b:13)blk:9/4,pg:5/4,lun:4/1,ch:3/1,pl:2/1,sec:0/2\n"
                                         "d:blk:7/4,pg:3/4,lun:11/1,ch:12/1,pl:2/1,sec:0/2\n")
    assert text(sysfs, "lines") == ("line: nluns:4, nblks:4, nsecs:512\n"
                                    "lines:d:-1,l:-1-f:16,m:0/0,c:0,b:0,co:0(d:0,l:0)t:16\n"
                                    "GC: full:0, high:0, mid:0, low:0, empty:0, werr: 0, queue:0\n"
                                    "data (-1) cur:0, left:0, vsc:0, s:0, map:0/512 (0)\n")
    assert text(sysfs, "write_buffer") == "2048\t0\t0\t0\t0\t0\tNULL - 0/2048/0 - 0\n"


def test_sysfs_rate_limiter_prints_the_limiter_and_buffer_counts(pblk, sysfs):
    pblk.write_sectors(0, stamp(0, 5))
    m = re.fullmatch(r"u:(\d+)/(\d+),gc:(\d+)/(\d+)\((\d+)\)\(stop:<(\d+),full:>(\d+),"
                     r"free:(\d+)/(\d+)/(\d+)\)-([01])\n", text(sysfs, "rate_limiter"))
    assert m, text(sysfs, "rate_limiter")
    rl = pblk.rl
    assert [int(x) for x in m.groups()] == [5, rl.user_max, 0, rl.gc_max, int(rl.state), rl.budget, rl.high,
                                            rl.free, rl.free - rl.rsv, rl.total, 1]


def test_sysfs_write_amp_counts_user_gc_and_pad_sectors(pblk, sysfs):
    pblk.write_sectors(0, stamp(0, 3))
    pblk.flush()                                    # 3 user sectors padded to a unit of 8
    assert text(sysfs, "write_amp_mileage") == "user:3 gc:0 pad:5 WA:2.66666\n"
    assert text(sysfs, "write_buffer") == "2048\t8\t8\t8\t8\t0\tNULL - 0/2048/0 - 0\n"


def test_sysfs_write_amp_trip_resets_on_0_and_refuses_anything_else(pblk, sysfs):
    pblk.write_sectors(0, stamp(0, 8))
    pblk.flush()
    sysfs.store("write_amp_trip", b"0\n")
    assert text(sysfs, "write_amp_trip") == "user:0 gc:0 pad:0 WA:NaN\n"
    pblk.write_sectors(8, stamp(8, 4))
    pblk.flush()
    assert text(sysfs, "write_amp_trip") == "user:4 gc:0 pad:4 WA:2.00000\n"
    assert text(sysfs, "write_amp_mileage") == "user:12 gc:0 pad:4 WA:1.33333\n"
    for bad in (b"1\n", b"x\n", b"", b"0 0\n", b"-1\n"):
        with pytest.raises(PblkError):
            sysfs.store("write_amp_trip", bad)
    assert text(sysfs, "write_amp_trip") == "user:4 gc:0 pad:4 WA:2.00000\n"


def test_sysfs_trip_starts_at_zero_on_a_reopened_volume(disk_pblk):
    p = disk_pblk()
    p.write_sectors(0, stamp(0, 16))
    p.close()
    p.machine.close()
    p = disk_pblk()
    s = PblkSysfs(p)
    assert text(s, "write_amp_mileage").startswith("user:16 ")      # the WA counters persist
    assert text(s, "write_amp_trip") == "user:0 gc:0 pad:0 WA:NaN\n"


def test_sysfs_padding_dist_is_the_share_of_flushes_by_pad_size(pblk, sysfs):
    pblk.write_sectors(0, stamp(0, 3))
    pblk.flush()                                    # padded with 5
    pblk.write_sectors(3, stamp(3, 8))
    pblk.flush()                                    # a whole unit: no padding
    assert text(sysfs, "padding_dist") == "0:50% 1:0% 2:0% 3:0% 4:0% 5:50% 6:0% 7:0% \n"
    pblk.write_sectors(11, stamp(11, 1))
    pblk.flush()                                    # padded with 7
    assert text(sysfs, "padding_dist") == "0:33% 1:0% 2:0% 3:0% 4:0% 5:33% 6:0% 7:33% \n"
    sysfs.store("padding_dist", b"0")
    assert text(sysfs, "padding_dist") == "0:0 1:0 2:0 3:0 4:0 5:0 6:0 7:0 \n"
    pblk.write_sectors(12, stamp(12, 2))
    pblk.flush()                                    # padded with 6
    assert text(sysfs, "padding_dist") == "0:0% 1:0% 2:0% 3:0% 4:0% 5:0% 6:100% 7:0% \n"
    with pytest.raises(PblkError):
        sysfs.store("padding_dist", b"2\n")


def _three_lines_one_half_stale(pblk):
    """Lines 0-2 full, half of line 0 overwritten into line 3; returns sectors per line."""
    per_line = pblk.lm.reserve_secs                 # 496 data sectors a line
    pblk.write_sectors(0, stamp(0, 3 * per_line))
    pblk.write_sectors(0, stamp(0, per_line // 2, tag=1))
    pblk.flush()
    return per_line


def test_sysfs_lines_sorts_closed_lines_into_pblk_gc_lists(pblk, sysfs):
    per_line = _three_lines_one_half_stale(pblk)
    lines = text(sysfs, "lines").splitlines()
    assert lines[1] == "lines:d:3,l:-1-f:11,m:0/1,c:3,b:0,co:0(d:3,l:0)t:16"
    # line 0 keeps 248 valid (< 512/2: mid), lines 1 and 2 are fully valid ("empty" of invalid)
    assert lines[2] == "GC: full:0, high:0, mid:1, low:0, empty:2, werr: 0, queue:0"
    written = per_line // 2                         # the overwrite: 31 whole units
    assert lines[3] == (f"data (3) cur:{8 + written}, left:{per_line - written}, vsc:{per_line // 2}, "
                        f"s:{per_line}, map:{8 + written + 8}/512 (0)")


def test_sysfs_gc_force_collects_the_line_with_most_invalid_sectors(pblk, sysfs):
    per_line = _three_lines_one_half_stale(pblk)
    runs, moved = pblk.c["gc_runs"], pblk.c["gc_moved"]
    sysfs.store("gc_force", b"1\n")
    assert pblk.c["gc_runs"] == runs + 1
    assert pblk.c["gc_moved"] == moved + per_line // 2
    # 248 sectors are whole write units: all on media at once, and the victim freed
    assert pblk.lm.lines[0].state == LineState.FREE
    assert text(sysfs, "write_amp_mileage").startswith(f"user:{3 * per_line + per_line // 2} "
                                                       f"gc:{per_line // 2} ")
    pblk.check()
    assert (pblk.read_sectors(0, per_line // 2) == stamp(0, per_line // 2, tag=1)).all()
    assert (pblk.read_sectors(per_line // 2, 2 * per_line) == stamp(per_line // 2, 2 * per_line)).all()


def test_sysfs_gc_force_frees_the_victim_once_its_last_partial_unit_is_flushed(pblk, sysfs):
    per_line = pblk.lm.reserve_secs
    pblk.write_sectors(0, stamp(0, 3 * per_line))
    pblk.write_sectors(0, stamp(0, 245, tag=1))
    pblk.flush()
    sysfs.store("gc_force", b"1\n")                 # 251 valid sectors move: 3 stay buffered
    assert pblk.lm.lines[0].state == LineState.GC
    assert text(sysfs, "gc_state") == "gc_enabled=1, gc_active=0\n"
    pblk.flush()
    assert pblk.lm.lines[0].state == LineState.FREE
    pblk.check()
    assert (pblk.read_sectors(0, 3 * per_line)[245 * 4096:] == stamp(245, 3 * per_line - 245)).all()


def test_sysfs_gc_force_without_a_worthwhile_victim_runs_no_gc(pblk, sysfs):
    sysfs.store("gc_force", b"1")                   # no closed line at all
    pblk.write_sectors(0, stamp(0, 2 * pblk.lm.reserve_secs))
    pblk.flush()
    sysfs.store("gc_force", b"1")                   # closed lines, but every sector valid
    sysfs.store("gc_force", b"0\n")                 # accepted: GC stays on
    assert pblk.c["gc_runs"] == 0
    with pytest.raises(PblkError):
        sysfs.store("gc_force", b"2\n")


def test_sysfs_read_only_files_refuse_stores(sysfs):
    for name in ("lines", "errors", "write_amp_mileage"):
        with pytest.raises(PblkError, match="read-only"):
            sysfs.store(name, b"0\n")


def test_sysfs_parses_numbers_as_kstrtouint():
    assert parse_uint(b"0\n") == 0 and parse_uint(b"1") == 1 and parse_uint(b"+7\n") == 7
    assert parse_uint(b"0x10\n") == 16 and parse_uint(b"010") == 8
    for bad in (b"", b"\n", b"1\n\n", b"0x", b"-1", b" 1", b"1 ", b"08", b"\xff"):
        with pytest.raises(PblkError):
            parse_uint(bad)


def test_sysfs_shows_grow_no_bigger_than_a_page(pblk, sysfs):
    pblk.write_sectors(0, np.zeros(4096 * 64, np.uint8))
    for name in sysfs.files:
        assert len(sysfs.show(name)) < 4096
