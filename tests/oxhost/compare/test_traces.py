"""oxhost.compare.traces and scripts/make_traces.py: detection, parsing, fitting, replay."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oxhost.compare.traces import (Request, Trace, TraceError, TraceOp, detect_format, format_trace, load_trace,
                                   parse_trace, write_trace)

R, W, T, F = (int(op) for op in TraceOp)
MAKE_TRACES = Path(__file__).resolve().parents[3] / "scripts" / "make_traces.py"
SAMPLES = {"sample.blkparse.txt": "blkparse", "sample_v3.iolog": "iolog", "sample_v2.iolog": "iolog",
           "sample_msr.csv": "msr"}


def err(text, **kw) -> str:
    with pytest.raises(TraceError) as info:
        parse_trace(text, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def small() -> Trace:
    return Trace.from_records([0, 1000, 5000, 9000, 12000], [R, W, T, F, W], [0, 4096, 8192, 0, 512],
                              [4096, 8192, 4096, 0, 1024])


# ---------------------------------------------------------------- the sample traces

@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("traces")
    subprocess.run([sys.executable, str(MAKE_TRACES), str(out)], check=True, capture_output=True, timeout=120)
    return out


def test_make_traces_writes_one_sample_per_format(samples):
    assert sorted(p.name for p in samples.iterdir()) == sorted(SAMPLES)
    for name, fmt in SAMPLES.items():
        assert detect_format(samples / name) == fmt
        assert detect_format(str(samples / name)) == fmt


def test_make_traces_samples_hold_the_same_mixed_workload(samples):
    blk = load_trace(samples / "sample.blkparse.txt")
    v3 = load_trace(samples / "sample_v3.iolog")
    v2 = load_trace(samples / "sample_v2.iolog")
    msr = load_trace(samples / "sample_msr.csv")
    s = blk.summary()
    assert 2000 <= s["requests"] <= 5000
    assert min(s["reads"], s["writes"], s["trims"], s["flushes"]) > 0
    for other in (v3, v2):
        assert np.array_equal(other.op, blk.op) and np.array_equal(other.offset, blk.offset)
        assert np.array_equal(other.nbytes, blk.nbytes)
    assert np.array_equal(v3.t_ns // 1000, blk.t_ns // 1000)       # iolog v3 keeps microseconds
    assert not v2.t_ns.any()                                          # v2 carries no timing
    rw = (blk.op == R) | (blk.op == W)
    assert np.array_equal(msr.op, blk.op[rw]) and np.array_equal(msr.offset, blk.offset[rw])
    ticks = blk.t_ns[rw] // 100                                       # FILETIME: 100 ns ticks
    assert np.array_equal(msr.t_ns, (ticks - ticks[0]) * 100)


def test_make_traces_samples_have_a_hot_set(samples):
    t = load_trace(samples / "sample_v3.iolog")
    data = t.offset[t.op != F]
    counts = np.sort(np.bincount(data // (1 << 20)))[::-1]           # requests per MiB of the region
    assert counts[:len(counts) // 8].sum() / counts.sum() > 0.6


def test_make_traces_is_deterministic(samples, tmp_path):
    subprocess.run([sys.executable, str(MAKE_TRACES), str(tmp_path)], check=True, capture_output=True,
                   timeout=120)
    for name in SAMPLES:
        assert (tmp_path / name).read_bytes() == (samples / name).read_bytes()


def test_make_traces_accepts_size_and_seed(tmp_path):
    subprocess.run([sys.executable, str(MAKE_TRACES), str(tmp_path), "--requests", "50", "--seed", "9",
                    "--region-mib", "8"], check=True, capture_output=True, timeout=120)
    t = load_trace(tmp_path / "sample_v3.iolog")
    assert len(t) == 50 and t.summary()["max_offset_end"] <= 8 << 20


# ---------------------------------------------------------------- blkparse

BLKPARSE = """\
  8,0    3        1     0.000000000  1234  Q   W 223490 + 8 [fio]
  8,0    3        2     0.000000820  1234  G   W 223490 + 8 [fio]
  8,0    3        3     0.000001200  1234  P   N [fio]
  8,0    3        4     0.000002010  1234  I   W 223490 + 8 [fio]
  8,0    3        5     0.000002500  1234  U   N [fio] 1
  8,0    3        6     0.000003000  1234  D   W 223490 + 8 [fio]
  8,0    0        1     0.000100000  1234  Q   R 2048 + 256 [fio]
  8,0    0        2     0.000100500  1234  A   R 2048 + 256 <- (8,1) 0
  8,0    1        0     0.000101000     0  m   N cfq1234S / dispatched a request
  8,0    0        3     0.000200000  1234  Q  DS 4096 + 2048 [fstrim]
  8,0    3        7     0.000250000     0  C   W 223490 + 8 [0]
  8,0    2        1     0.000300000   420  Q FWS [jbd2/sda1-8]
  8,0    2        2     0.000400000   420  Q FWFS 8 + 8 [jbd2/sda1-8]
  8,0    2        3     0.000500000   420  Q  FN [kworker/2:1H]
  8,0    2        4     0.000600000   420  Q  RA 16 + 8 [cat]
  8,0    2        5     0.000700000   420  Q  WFS 24 + 8 [fio]
  8,0    2        6     0.000800000   420  Q   N 0 + 0 [fio]
  8,0    2        7     1.500000000   420  Q  DE 32 + 8 [blkdiscard]
CPU0 (8,0):
 Reads Queued:           1,      128KiB\t Writes Queued:           1,        4KiB
 Read Dispatches:        0,        0KiB\t Write Dispatches:        1,        4KiB
Total (8,0):
 Reads Queued:           1,      128KiB\t Writes Queued:           1,        4KiB

Throughput (R/W): 0KiB/s / 16KiB/s
Events (8,0): 17 entries
Skips: 0 forward (0 -   0.0%)
"""


def test_blkparse_takes_queue_events_with_512_byte_sectors():
    t = parse_trace(BLKPARSE)
    assert t.fmt == "blkparse"
    assert list(t.replay())[:3] == [Request(0, "write", 223490 * 512, 4096),
                                    Request(100_000, "read", 2048 * 512, 131072),
                                    Request(200_000, "trim", 4096 * 512, 2048 * 512)]


def test_blkparse_rwbs_flags_map_to_ops():
    ops = [(r.op, r.offset, r.nbytes) for r in parse_trace(BLKPARSE).replay()][3:]
    assert ops == [("flush", 0, 0),                       # FWS with no data: an empty preflush
                   ("flush", 0, 0), ("write", 8 * 512, 4096),  # FWFS: preflush, then the FUA write
                   ("flush", 0, 0),                       # FN
                   ("read", 16 * 512, 4096),              # RA: read-ahead
                   ("write", 24 * 512, 4096),             # WFS: FUA write
                   ("trim", 32 * 512, 4096)]              # DE: secure erase; N events are skipped
    assert parse_trace(BLKPARSE).t_ns[-1] == 1_500_000_000


def test_blkparse_without_queue_events_takes_dispatches():
    text = "\n".join(line for line in BLKPARSE.splitlines() if "  Q " not in line)
    t = parse_trace(text)
    assert [(r.t_ns, r.op, r.offset) for r in t.replay()] == [(0, "write", 223490 * 512)]


def test_blkparse_malformed_event_names_the_line(tmp_path):
    bad = BLKPARSE.replace("Q   R 2048 + 256 [fio]", "Q   R 2048 + x [fio]")
    assert err(bad).startswith("<text>:7: expected 'SECTOR + COUNT' after Q R")
    p = tmp_path / "trace.txt"
    p.write_text(BLKPARSE.replace("  8,0    0        2     0.000100500", "  8,0    0        2     zero"))
    with pytest.raises(TraceError, match=rf"^{p}:8: not a blkparse event line"):
        load_trace(p)
    assert err(BLKPARSE.replace("Q  RA 16", "Q  XA 16")).startswith("<text>:15: unknown RWBS 'XA'")


def test_blkparse_several_devices_are_refused_unless_one_is_picked():
    text = BLKPARSE + "  8,16   1        1     0.000000000  1234  Q   W 1 + 8 [fio]\n"
    text = text.replace("CPU0 (8,0):", "") .replace("Total (8,0):", "")
    text = "\n".join(line for line in text.splitlines() if line.startswith("  8,"))
    assert "events of 2 devices (8,0, 8,16); pick one with device=" in err(text)
    assert err(text).startswith("<text>:19:")
    assert [r.offset for r in parse_trace(text, device="8,16").replay()] == [512]


# ---------------------------------------------------------------- fio iologs

def test_iolog_v3_timestamps_are_microseconds():
    t = parse_trace("fio version 3 iolog\n22 /dev/sdb add\n133 /dev/sdb open\n137 /dev/sdb read 61440 4096\n"
                    "3321 /dev/sdb write 774144 8192\n4000 /dev/sdb trim 0 1048576\n4100 /dev/sdb sync 0 0\n"
                    "4200 /dev/sdb datasync 0 0\n80823 /dev/sdb close\n")
    assert list(t.replay()) == [Request(0, "read", 61440, 4096), Request(3_184_000, "write", 774144, 8192),
                                Request(3_863_000, "trim", 0, 1 << 20), Request(3_963_000, "flush", 0, 0),
                                Request(4_063_000, "flush", 0, 0)]


def test_iolog_v2_waits_advance_the_clock():
    t = parse_trace("fio version 2 iolog\n/dev/sdb add\n/dev/sdb open\n/dev/sdb write 0 4096\n"
                    "/dev/sdb wait 500 0\n/dev/sdb read 0 4096\n/dev/sdb wait 250 0\n/dev/sdb read 4096 4096\n"
                    "/dev/sdb close\n")
    assert [(r.t_ns, r.op) for r in t.replay()] == [(0, "write"), (500_000, "read"), (750_000, "read")]


def test_iolog_drops_zero_length_data_requests():
    t = parse_trace("fio version 2 iolog\nf add\nf write 0 0\nf write 0 4096\n")
    assert len(t) == 1


@pytest.mark.parametrize("body,line,words", [
    ("/dev/sdb read 0\n", 2, "wrong number of fields"),
    ("/dev/sdb read zero 4096\n", 2, "not a number where one is expected"),
    ("/dev/sdb add\n/dev/sdb erase 0 4096\n", 3, "unknown iolog action 'erase'"),
    ("/dev/sdb read -4096 4096\n", 2, "negative offset"),
])
def test_iolog_malformed_line_names_the_line(body, line, words):
    msg = err("fio version 2 iolog\n" + body)
    assert msg.startswith(f"<text>:{line}: ") and words in msg


def test_iolog_v3_line_without_timestamp_is_malformed(tmp_path):
    p = tmp_path / "x.iolog"
    p.write_text("fio version 3 iolog\n0 /dev/sdb add\n/dev/sdb read 0 4096\n")
    with pytest.raises(TraceError, match=rf"^{p}:3: not a number where one is expected; expected 'TIMESTAMP FILE"):
        load_trace(p)


def test_iolog_several_files_are_refused_unless_one_is_picked():
    text = "fio version 2 iolog\n/a add\n/b add\n/a write 0 4096\n/b write 8192 4096\n"
    assert "events of 2 files (/a, /b)" in err(text)
    assert [r.offset for r in parse_trace(text, device="/b").replay()] == [8192]


# ---------------------------------------------------------------- MSR Cambridge

MSR = """Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime
128166372003061629,hm,1,Read,383496192,32768,205873
128166372016382155,hm,1,Write,3244032,4096,9460
128166372016383155,hm,1,write,3248128,8192,9460
"""


def test_msr_timestamps_are_filetime_ticks_of_100ns():
    t = parse_trace(MSR)
    assert t.fmt == "msr"
    assert list(t.replay()) == [Request(0, "read", 383496192, 32768),
                                Request((128166372016382155 - 128166372003061629) * 100, "write", 3244032, 4096),
                                Request((128166372016383155 - 128166372003061629) * 100, "write", 3248128, 8192)]


def test_msr_header_is_optional():
    assert parse_trace(MSR.split("\n", 1)[1]) == parse_trace(MSR)
    assert detect_format(MSR.split("\n", 1)[1]) == "msr"


@pytest.mark.parametrize("row,words", [
    ("128166372016382155,hm,1,Write,3244032,4096", "expected 7 fields"),
    ("128166372016382155,hm,1,Trim,3244032,4096,1", "Type 'Trim' is not Read or Write"),
    ("soon,hm,1,Write,3244032,4096,1", "Timestamp, Offset and Size must be integers"),
])
def test_msr_malformed_row_names_the_line(row, words, tmp_path):
    p = tmp_path / "hm_1.csv"
    p.write_text(MSR + row + "\n")
    with pytest.raises(TraceError) as info:
        load_trace(p)
    assert str(info.value).startswith(f"{p}:5: ") and words in str(info.value)


def test_msr_several_disks_are_refused_unless_one_is_picked():
    text = MSR + "128166372016384155,hm,2,Read,0,4096,1\n"
    assert "events of 2 disks (1, 2)" in err(text)
    assert len(parse_trace(text, device="2")) == 1


# ---------------------------------------------------------------- detection

def test_detect_format_from_text_and_files(tmp_path):
    assert detect_format(BLKPARSE) == "blkparse"
    assert detect_format("fio version 3 iolog\n") == "iolog"
    assert detect_format("\n\nfio version 2 iolog\n/a add\n") == "iolog"
    assert detect_format(MSR) == "msr"
    p = tmp_path / "t.csv"
    p.write_text(MSR)
    assert detect_format(p) == detect_format(str(p)) == "msr"


@pytest.mark.parametrize("text,words", [
    ("hello world\n", "cannot tell the trace format (blkparse, iolog or msr) from 'hello world'"),
    ("", "cannot tell the trace format"),
    ("fio version 1 iolog\n", "fio iolog version 1 is not supported"),
])
def test_detect_format_refuses_unknown_text(text, words):
    with pytest.raises(TraceError) as info:
        detect_format(text)
    assert words in str(info.value)


def test_load_trace_names_a_missing_file(tmp_path):
    with pytest.raises(TraceError, match=r"absent\.txt: cannot read it"):
        load_trace(tmp_path / "absent.txt")


def test_parse_trace_with_an_explicit_format_reports_the_mismatch():
    assert err(MSR, fmt="iolog").startswith("<text>:1: not a fio version 2 or 3 iolog")
    assert err("fio version 3 iolog\n", fmt="blkparse").startswith("<text>:1: not a blkparse event line")


# ---------------------------------------------------------------- the Trace

def test_trace_from_records_sorts_by_time_and_rebases():
    t = Trace.from_records([500, 100, 300, 100], [R, W, T, R], [0, 1, 2, 3], [1, 1, 1, 1])
    assert t.t_ns.tolist() == [0, 0, 200, 400] and t.offset.tolist() == [1, 3, 2, 0]
    assert t.t_ns.dtype == np.int64 and t.op.dtype == np.uint8
    assert t[2:].t_ns.tolist() == [0, 200] and len(t[t.op == R]) == 2


def test_trace_fit_folds_and_aligns_onto_a_smaller_device():
    dev = 1 << 20
    t = Trace.from_records([0, 1, 2, 3, 4, 5], [R, W, W, T, F, R],
                           [5 * dev + 8192, 512, dev - 4096, 3 * dev + 100, 77, 0],
                           [4096, 1024, 16384, 5000, 0, 4 * dev])
    f = t.fit(dev)
    assert f.offset.tolist() == [8192, 0, dev - 16384, 0, 0, 0]
    assert f.nbytes.tolist() == [4096, 4096, 16384, 8192, 0, dev]
    assert ((f.offset % 4096 == 0) & (f.offset + f.nbytes <= dev)).all()
    assert np.array_equal(f.t_ns, t.t_ns) and np.array_equal(f.op, t.op)


def test_trace_fit_keeps_every_request_of_a_sample_inside(tmp_path):
    t = parse_trace(format_trace(small(), "iolog"))
    f = t.fit(6 * 4096 + 100)
    assert ((f.offset + f.nbytes) <= 6 * 4096).all() and (f.nbytes % 4096 == 0).all()


def test_trace_replay_timed_afap_and_speed():
    t = small()
    assert [r.t_ns for r in t.replay("timed")] == [0, 1000, 5000, 9000, 12000]
    assert [r.t_ns for r in t.replay("timed", speed=4)] == [0, 250, 1250, 2250, 3000]
    assert [r.t_ns for r in t.replay("afap")] == [None] * 5
    assert [r.op for r in t.replay("afap")] == ["read", "write", "trim", "flush", "write"]
    with pytest.raises(ValueError):
        next(t.replay("slow"))


def test_trace_summary_counts_ops_and_bytes():
    s = small().summary()
    assert (s["requests"], s["reads"], s["writes"], s["trims"], s["flushes"]) == (5, 1, 2, 1, 1)
    assert (s["write_bytes"], s["duration_s"], s["max_offset_end"]) == (9216, 12e-6, 12288)


@pytest.mark.parametrize("fmt,kw", [("blkparse", {}), ("iolog", {"version": 3}), ("iolog", {"version": 2}),
                                    ("msr", {})])
def test_trace_round_trips_through_each_format(fmt, kw, tmp_path):
    t = small()
    p = tmp_path / "t"
    write_trace(t, p, fmt, **kw)
    back = load_trace(p)
    assert back.fmt == fmt
    keep = np.isin(t.op, [R, W]) if fmt == "msr" else np.ones(len(t), bool)
    assert np.array_equal(back.op, t.op[keep]) and np.array_equal(back.offset, t.offset[keep])
    assert np.array_equal(back.nbytes, t.nbytes[keep])
    if kw.get("version") != 2:
        assert np.array_equal(back.t_ns, t[keep].t_ns)
