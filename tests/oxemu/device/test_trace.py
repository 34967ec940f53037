"""The debug trace (debug > 0) of a dual-plane 8-sector write matches SPEC section 7 line
by line: each line of the SPEC sample becomes a regex with its numbers as captures."""
import io
import re

import numpy as np
import pytest

from oxemu import Geometry, Machine
from oxhost.lightnvm import Device, NvmError

from tests.helpers import block_planes, guest_addr, page_addrs, stamp_sectors

# The SPEC 7 sample, one pattern per line; {n} is a decimal number, {h} a hex number.
SPEC_LINES = {
    "head": "[{n}] IO CMD 0x{h}, nsid: {n}, cid: {n}",
    "nsec": " Number of sectors: {n}",
    "dma": " DMA size: {n} (data) + {n} (meta) = {n} bytes",
    "ppa": " [ppa({n}): ch: {n}, lun: {n}, blk: {n}, pl: {n}, pg: {n}, sec: {n}]",
    "prp": " [prp({n}): 0x{h}",
    "meta": " [meta_prp({n}): 0x{h}",
    "ftl": " CMD cid: {n}, type: 0x{h} submitted to FTL. ",
    "ftlq": "  Channel: {n}, FTL queue {n}",
    "mmgr": " MMGR_CMD type: 0x{h} submitted to VOLT.",
    "mmgr_at": "  Channel: {n}, lun: {n}, blk: {n}, pl: {n}, pg: {n}]",
    "callbk": " [IO CALLBK. CMD 0x{h}. mmgr_ch: {n}, lun: {n}, blk: {n}, pl: {n}, pg: {n}]",
    "done": " [NVMe cmd 0x{h}. cid: {n} completed. Status: {h}]",
}


def _regex(template: str):
    """(compiled regex, base of each capture) for one SPEC line template."""
    parts, bases = [], []
    for tok in re.split(r"(\{h\}|\{n\})", template):
        if tok == "{h}":
            parts.append("([0-9a-f]+)")
            bases.append(16)
        elif tok == "{n}":
            parts.append(r"(\d+)")
            bases.append(10)
        else:
            parts.append(re.escape(tok))
    return re.compile("".join(parts) + r"\Z"), bases


PATTERNS = {k: _regex(v) for k, v in SPEC_LINES.items()}


def _match(kind: str, line: str) -> list:
    rx, bases = PATTERNS[kind]
    m = rx.match(line)
    assert m, f"trace line {line!r} does not match SPEC 7 {SPEC_LINES[kind]!r}"
    return [int(g, b) for g, b in zip(m.groups(), bases)]


def _command_block(text: str, opcode: int) -> list:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if re.match(rf"\[\d+\] IO CMD 0x{opcode:02x},", ln))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(" [NVMe cmd "))
    return lines[start:end + 1]


@pytest.fixture
def traced():
    stream = io.StringIO()
    m = Machine(debug=1, trace_stream=stream, geometry=Geometry.small())
    yield m, Device.open(m), stream
    m.close()


@pytest.mark.parametrize("with_meta", [False, True], ids=["data", "data+meta"])
def test_trace_of_a_dual_plane_write_matches_spec_7_line_by_line(traced, with_meta):
    m, dev, stream = traced
    ch, lun, blk = 1, 0, 5
    dev.addr_erase(block_planes(ch, lun, blk, 2))
    page = page_addrs(ch, lun, blk, 0, 2)
    buf = dev.buf_alloc(8 * 4096)
    buf[:] = stamp_sectors(page)
    meta = np.arange(128, dtype=np.uint8) if with_meta else None
    stream.seek(0)
    stream.truncate()
    dev.addr_write(page, buf, meta=meta)
    cid = dev.driver.queues[1].next_cid - 1
    lines = _command_block(stream.getvalue(), 0x91)
    it = iter(lines)

    seq, opc, nsid, tcid = _match("head", next(it))
    assert (opc, nsid, tcid) == (0x91, 1, cid)
    assert _match("nsec", next(it)) == [8]
    meta_nbytes = 128 if with_meta else 0
    assert _match("dma", next(it)) == [32768, meta_nbytes, 32768 + meta_nbytes]
    for i, a in enumerate(page):
        assert _match("ppa", next(it)) == [i, a.ch, a.lun, a.blk, a.pl, a.pg, a.sec]
    base = guest_addr(dev, buf)
    for i in range(8):                                    # prp(i): guest address of sector i
        assert _match("prp", next(it)) == [i, base + i * 4096]
    line = next(it)
    metas = []
    while line.startswith(" [meta_prp("):
        metas.append(_match("meta", line))
        line = next(it)
    assert [n for n, _ in metas] == list(range(len(metas))) and metas
    if not with_meta:
        assert all(addr == 0 for _, addr in metas)
    else:
        assert metas[0][1] != 0 and all(b - a == 16 for (_, a), (_, b) in zip(metas, metas[1:]))
    assert _match("ftl", line) == [cid, 0x3]
    assert _match("ftlq", next(it))[0] == ch
    submitted, called_back = [], []
    for line in it:
        if line.startswith(" MMGR_CMD"):
            assert _match("mmgr", line) == [0x3]
            submitted.append(tuple(_match("mmgr_at", next(it))))
        elif line.startswith(" [IO CALLBK"):
            t, *at = _match("callbk", line)
            assert t == 0x3
            assert tuple(at) in submitted, "callback before its MMGR command"
            called_back.append(tuple(at))
        else:
            assert _match("done", line) == [0x91, cid, 0]
            break
    want = [(ch, lun, blk, pl, 0) for pl in range(2)]    # one MMGR command per plane page
    assert sorted(submitted) == want and sorted(called_back) == want
    assert seq >= 0


def test_trace_of_a_failed_read_reports_the_status(traced):
    m, dev, stream = traced
    page = page_addrs(0, 1, 3, 0, 2)
    with pytest.raises(NvmError):
        dev.addr_read(page)
    last = _command_block(stream.getvalue(), 0x92)[-1]
    assert _match("done", last)[0] == 0x92
    assert last.endswith("Status: 42ff]")


def test_trace_is_silent_when_debug_is_0(make_machine):
    stream = io.StringIO()
    m = make_machine(debug=0, trace_stream=stream)
    dev = Device.open(m)
    dev.addr_erase(block_planes(0, 0, 1, 2))
    assert stream.getvalue() == ""
