"""The documentation stays true: README.md and docs/*.md link only to files of this
repository, nothing user-visible sends a reader to a file the repository does not have,
and every table marked `<!-- checked: NAME -->` in docs/ matches the code it describes.

A checked table's leading columns are compared row by row with what CHECKS[NAME] computes
from the code (the columns after them are prose). `python tests/test_docs.py NAME` prints
the rows the code gives, to paste when a layout changes on purpose.
"""
import argparse
import ast
import errno
import functools
import re
import struct
import sys
from pathlib import Path

import click
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

MARKER = re.compile(r"^\s*<!--\s*checked:\s*([\w-]+)\s*-->\s*$")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
INLINE_LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$", re.M)
# What a reader outside this machine does not have: the team's reference design.
OUTSIDE = re.compile(r"\.\./shared|SPEC\.md|/work/|\bSPEC\s*\d")


# ---------------------------------------------------------------- markdown
def _prose(text: str) -> str:
    """The text without fenced code blocks."""
    return FENCE.sub("", text)


def _links(text: str) -> list[str]:
    body = CODE_SPAN.sub("", _prose(text))
    return INLINE_LINK.findall(body) + REF_LINK.findall(body)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    h = CODE_SPAN.sub(r"\1", heading.strip()).lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    out, seen = set(), {}
    for line in _prose(path.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = _slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def _cell(text: str) -> str:
    return text.strip().replace("`", "").replace("**", "").strip()


def checked_tables(path: Path) -> dict[str, list[list[str]]]:
    """{NAME: body rows (cells)} of the tables marked `<!-- checked: NAME -->` in a page."""
    lines = path.read_text().splitlines()
    out = {}
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        rows = []
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            rows.append([_cell(c) for c in lines[j].strip().strip("|").split("|")])
            j += 1
        assert len(rows) >= 2, f"{path.name}: the checked table {m.group(1)!r} has no rows after its marker"
        assert m.group(1) not in out, f"{path.name}: {m.group(1)!r} is marked twice"
        out[m.group(1)] = rows[2:]               # header and separator rows are prose
    return out


def all_checked_tables() -> dict[str, tuple[Path, list[list[str]]]]:
    out = {}
    for page in PAGES:
        for name, rows in checked_tables(page).items():
            assert name not in out, f"{name!r} is marked in {out[name][0].name} and {page.name}"
            out[name] = (page, rows)
    return out


# ---------------------------------------------------------------- what the code says
def _n(v: int) -> str:
    return f"{v:,}"


def _hex(v: int, width: int = 2) -> str:
    return f"0x{v:0{width}X}"


def _enum(e, width: int = 2) -> list[tuple]:
    return [(_hex(int(m), width), m.name) for m in e]


def _plain_enum(e) -> list[tuple]:
    return [(str(int(m)), m.name) for m in e]


def _ctypes_fields(s, base: int = 0, prefix: str = "") -> list[tuple]:
    return [(str(base + getattr(s, name).offset), str(getattr(s, name).size), prefix + name)
            for name, *_ in s._fields_]


def _dtype_fields(dt: np.dtype, prefix: str = "") -> list[tuple]:
    rows = [(off, prefix + name, dt.fields[name][0].itemsize) for name in dt.names
            for off in [dt.fields[name][1]]]
    return [(str(off), str(size), name) for off, name, size in sorted(rows)]


def _geometry():
    from oxemu import Geometry
    return Geometry()


def _host_lines():
    """pblk's LineGeometry over LUNs 0-31 of the default device, as the host learns it."""
    from oxemu import NandTiming
    from oxemu.device.identity import nvm_identity
    from oxhost.lightnvm.geo import Geo
    from oxhost.pblk.lines import LineGeometry
    return LineGeometry(Geo.from_identity(nvm_identity(_geometry(), NandTiming())))


def _appnvm_plan():
    from oxemu.device.appnvm import provisioning
    from oxemu.device.appnvm.mapping import Addr
    return provisioning.plan(Addr(_geometry()))


def check_geometry():
    import dataclasses
    g = _geometry()
    return [(f.name, _n(getattr(g, f.name))) for f in dataclasses.fields(g)]


def check_geometry_derived():
    g = _geometry()
    names = ("page_nbytes", "sectors_per_block", "total_luns", "total_sectors", "total_pages",
             "data_nbytes", "oob_total_nbytes", "ppa_bits")
    return [(n, _n(getattr(g, n))) for n in names]


def check_nand():
    import dataclasses
    from oxemu import NandTiming
    t = NandTiming()
    return [(f.name, _n(getattr(t, f.name))) for f in dataclasses.fields(t)]


def check_capacity():
    from oxemu import appnvm_exported_sectors
    from oxemu.device.appnvm.mapping import Addr
    lg = _host_lines()
    nl = appnvm_exported_sectors(_geometry())
    return [("pblk", _n(lg.nchunks), _n(lg.capacity_sectors), _n(lg.capacity_sectors * 4096)),
            ("AppNVM", _n(Addr(_geometry()).total_blocks), _n(nl), _n(nl * 4096))]


def check_reg():
    from oxemu.wire import Reg
    return _enum(Reg)


def check_cap():
    from oxemu.device.controller import CAP_VALUE, VERSION
    from oxemu.wire import CAP
    return [("CAP.MQES", str((CAP_VALUE >> CAP.MQES_SHIFT) & CAP.MQES_MASK)),
            ("CAP.CQR", str(int(bool(CAP_VALUE & CAP.CQR)))),
            ("CAP.TO", str((CAP_VALUE >> CAP.TO_SHIFT) & CAP.TO_MASK)),
            ("CAP.DSTRD", str((CAP_VALUE >> CAP.DSTRD_SHIFT) & CAP.DSTRD_MASK)),
            ("CAP.CSS", _hex((CAP_VALUE >> CAP.CSS_SHIFT) & CAP.CSS_MASK)),
            ("CAP.MPSMIN", str((CAP_VALUE >> CAP.MPSMIN_SHIFT) & CAP.MPSMIN_MASK)),
            ("CAP.MPSMAX", str((CAP_VALUE >> CAP.MPSMAX_SHIFT) & CAP.MPSMAX_MASK)),
            ("VS", _hex(VERSION, 8))]


def check_sqe():
    from oxemu.wire import SQE_DTYPE
    return _dtype_fields(SQE_DTYPE)


def check_sqe_ph():
    """nvme_nvm_ph_rw overlay: offsets and sizes of fields 9-12 of the SQE_PH struct."""
    from oxemu.wire.nvme import SQE_PH
    fmt = SQE_PH.format.lstrip("<")
    rows = []
    for i, name in zip(range(9, 13), ("spba", "nlb", "control", "dsmgmt")):
        rows.append((str(struct.calcsize("<" + fmt[:i])), str(struct.calcsize("<" + fmt[i])), name))
    return rows


def check_control():
    from oxemu.wire import Control, PMode
    return _enum(PMode, 3) + [(_hex(int(m), 3), m.name) for m in Control if m.name != "PLANE_MASK"]


def check_cqe():
    from oxemu.wire import CQE_DTYPE
    return _dtype_fields(CQE_DTYPE)


def check_admin_opc():
    """(opcode, name, modes): modes from the controller's own table and each mode's extras."""
    from oxemu import Geometry, Machine
    from oxemu.wire import AdminOpc
    with Machine(lnvm=1, volt=1, geometry=Geometry.small()) as oc, \
            Machine(lnvm=0, volt=1, geometry=Geometry.small()) as ap, \
            Machine(lnvm=1, volt=1, geometry=Geometry.small(), spec="2.0") as o2, \
            Machine(lnvm=0, volt=1, geometry=Geometry.small(), spec="zns") as zn:
        common = set(oc.device.controller.admin._table) & set(ap.device.controller.admin._table)
        rows = []
        for op in AdminOpc:
            modes = ("both" if op in common else
                     " ".join(n for n, m in (("open-channel", oc), ("AppNVM", ap), ("2.0", o2), ("zoned", zn))
                              if op in m.device.mode.admin_commands()) or "none")
            rows.append((_hex(int(op)), op.name, modes))
    return rows


def check_nvm_opc():
    from oxemu.wire import NvmOpc
    return _enum(NvmOpc)


def check_log_page():
    from oxemu.wire import LogPage
    return _enum(LogPage)


def check_feature():
    from oxemu.wire import FeatureId
    return _enum(FeatureId)


def check_cns():
    from oxemu.wire import Cns
    return _enum(Cns)


def _sent(name: str) -> str:
    """The status values the device puts on the wire for Status.NAME: with or without DNR,
    from the places oxemu (outside the wire module) names it; 'not sent' when none does."""
    from oxemu.wire import Status
    pat = re.compile(rf"Status\.{name}\b(\s*\|\s*Status\.DNR)?")
    forms = set()
    for path in (ROOT / "oxemu").rglob("*.py"):
        if "wire" in path.parts:
            continue
        for m in pat.finditer(path.read_text()):
            forms.add(int(Status[name]) | (int(Status.DNR) if m.group(1) else 0))
    return " / ".join(_hex(v, 4) for v in sorted(forms)) or "not sent"


def check_status():
    from oxemu.wire import STATUS_REASONS, Status
    return [(_hex(int(s), 4), s.name, _sent(s.name), STATUS_REASONS[s]) for s in Status if s is not Status.DNR]


def check_nvm_id12():
    from oxemu.wire import NvmId12, NvmIdGroup
    top = [r for r in _ctypes_fields(NvmId12) if r[2] != "group"]
    grp = _ctypes_fields(NvmIdGroup, NvmId12.group.offset, "group.")
    return sorted(top + grp, key=lambda r: int(r[0]))


def check_ppaf():
    g = _geometry()
    return [(k, str(off), str(ln)) for k, (off, ln) in g.ppaf.items()]


def check_generic_addr():
    from oxhost.lightnvm.addr import Addr
    top = Addr.from_val((1 << 64) - 1)
    rows = []
    for f in ("blk", "pg", "sec", "pl", "lun", "ch"):
        off = Addr(**{f: 1}).val.bit_length() - 1
        rows.append((f, str(off), str(getattr(top, f).bit_length())))
    return rows


def check_bbt_header():
    from oxemu.wire import BbTableHeader
    return _ctypes_fields(BbTableHeader)


def check_block_state():
    from oxemu.wire import BlockState
    return _plain_enum(BlockState)


def check_smart():
    from oxemu.wire import SmartLog
    return _ctypes_fields(SmartLog)


def check_ftl_log():
    from oxemu.wire import FtlLog
    return _ctypes_fields(FtlLog)


def check_media_label():
    from oxemu.wire import MediaLabel
    return _ctypes_fields(MediaLabel)


def check_ocssd2_geometry():
    from oxemu.wire import Geometry20, LbaFormat20
    top = [r for r in _ctypes_fields(Geometry20) if not r[2].startswith("resv") and r[2] not in ("lbaf", "vs")]
    lbaf = _ctypes_fields(LbaFormat20, Geometry20.lbaf.offset, "lbaf.")
    return sorted(top + [r for r in lbaf if not r[2].endswith("resv")], key=lambda r: int(r[0]))


def check_ocssd2_defaults():
    """The 2.0 geometry of the default media, as the device reports it."""
    from oxemu import NandTiming
    from oxemu.device.ocssd2.identity import Lbaf, WriteRules, geometry20
    from oxemu.wire import Geometry20
    g = _geometry()
    i = Geometry20.from_buffer_copy(geometry20(g, NandTiming(), WriteRules(g), Lbaf(g)))
    f = i.lbaf
    rows = [(n, _n(getattr(i, n))) for n in ("mjr", "mnr", "num_grp", "num_pu", "num_chk", "clba", "ws_min",
                                             "ws_opt", "mw_cunits", "maxoc", "maxocpu", "wit")]
    return rows + [("mccap", _hex(i.mccap)),
                   ("lbaf", f"{f.grp_len} / {f.pu_len} / {f.chk_len} / {f.lba_len}")]


def check_ocssd2_constants():
    from oxemu.device.ocssd2.chunks import EARLY_CLOSE, ENDURANCE
    from oxemu.device.ocssd2.notices import LOG_ENTRIES
    from oxemu.device.controller import AER_LIMIT
    from oxemu.device.ocssd2.identity import WriteRules
    g = _geometry()
    r = WriteRules(g)
    return [("EARLY_CLOSE", _n(EARLY_CLOSE)), ("ENDURANCE", _n(ENDURANCE)),
            ("LOG_ENTRIES", _n(LOG_ENTRIES)), ("AER_LIMIT", _n(AER_LIMIT)),
            ("pblk ring entries kept", _n((r.mw_cunits + r.ws_opt) * g.total_luns))]


def check_chunk_opc():
    from oxemu.wire import ChunkOpc, Ocssd2LogPage
    return _enum(ChunkOpc) + _enum(Ocssd2LogPage)


def check_chunk_desc():
    from oxemu.wire import CHUNK_DESC_DTYPE
    return _dtype_fields(CHUNK_DESC_DTYPE)


def check_chunk_notification():
    from oxemu.wire import ChunkNotification
    return _ctypes_fields(ChunkNotification)


def check_chunk_flags():
    from oxemu.wire import ChunkState, ChunkType, Mccap, NotifyMask, NotifyState
    return [(_hex(int(m), 4), f"{e.__name__}.{m.name}") for e in (ChunkState, ChunkType, Mccap, NotifyState,
                                                                 NotifyMask) for m in e]


def check_fio_quick():
    from oxhost.compare.runner import QUICK_JOB_REQUESTS
    return [("QUICK_JOB_REQUESTS", _n(QUICK_JOB_REQUESTS))]


def check_media_mode():
    from oxemu.wire import Interface, MediaMode, TargetKind
    return [(str(int(m)), f"MediaMode.{m.name}") for m in MediaMode] + \
           [(str(int(m)), f"TargetKind.{m.name}") for m in TargetKind] + \
           [(str(int(m)), f"Interface.{m.name}") for m in Interface]


def check_volt_header():
    from oxemu.volt.store import VoltHeader
    return _ctypes_fields(VoltHeader)


def check_volt_regions():
    from oxemu.volt.store import HEADER_NBYTES, layout
    g = _geometry()
    lay = layout(g)
    n = lay["n"]
    return [("header", _n(0), _n(HEADER_NBYTES)),
            ("block-plane state", _n(lay["state_off"]), _n(7 * n)),
            ("page state", _n(lay["pstate_off"]), _n(g.total_pages)),
            ("data", _n(lay["data_off"]), _n(g.data_nbytes)),
            ("OOB", _n(lay["oob_off"]), _n(g.oob_total_nbytes)),
            ("NVRAM", _n(lay["nvram_off"]), _n(lay["nvram_nbytes"])),
            ("file size", "", _n(lay["file_nbytes"]))]


def check_volt_states():
    from oxemu.volt import PageState, StopState
    return [(str(int(m)), f"PageState.{m.name}") for m in PageState] + \
           [(str(int(m)), f"StopState.{m.name}") for m in StopState]


def check_magic():
    from oxemu.device.appnvm.layout import CKPT_MAGIC, OOB_MAGIC
    from oxemu.volt.store import MAGIC as VOLT_MAGIC, VERSION as VOLT_VERSION
    from oxemu.wire import BBT_MAGIC, LABEL_MAGIC, LABEL_VERSION
    from oxhost.pblk.metadata import EMETA_VERSION, PBLK_MAGIC, SMETA_VERSION
    from oxhost.pblk.trim import TRIM_MAGIC
    from oxemu.device.appnvm.layout import FORMAT_VERSION
    from oxhost.torture.stamp import MAGIC as STAMP_MAGIC
    from oxemu.device.zns.layout import SHAPE_MAGIC

    def le(v: int, n: int) -> str:
        return repr(v.to_bytes(n, "little"))[2:-1]
    return [("VOLT disk file", repr(VOLT_MAGIC)[2:-1], str(VOLT_VERSION)),
            ("media label", le(LABEL_MAGIC, 4), str(LABEL_VERSION)),
            ("bad block table", BBT_MAGIC.decode(), "1"),
            ("pblk smeta / emeta", _hex(PBLK_MAGIC, 8), "%d.%d / %d.%d" % (*SMETA_VERSION, *EMETA_VERSION)),
            ("pblk TRIM sector", le(TRIM_MAGIC, 4), ""),
            ("AppNVM OOB unit header", le(OOB_MAGIC, 4), str(FORMAT_VERSION)),
            ("AppNVM checkpoint", le(CKPT_MAGIC, 8), str(FORMAT_VERSION)),
            ("torture sector stamp", le(STAMP_MAGIC, 4), ""),
            ("ZNS zone shape", le(SHAPE_MAGIC, 4), "1")]


def check_pblk_oob():
    from oxhost.pblk.metadata import OOB, SEQ_MASK, pack_oob
    kind_bit = int(pack_oob(0, 1, 0)[0, 0]).bit_length() - 1
    return _dtype_fields(OOB) + [(f"bits 0-{SEQ_MASK.bit_length() - 1}", "", "reserved: line sequence"),
                                 (f"bits {kind_bit}-63", "", "reserved: kind")]


def check_pblk_kind():
    from oxhost.pblk.metadata import Kind
    return _plain_enum(Kind)


def check_line_header():
    from oxhost.pblk.metadata import LINE_HEADER
    return _dtype_fields(LINE_HEADER)


def check_line_smeta():
    from oxhost.pblk.metadata import LINE_SMETA
    return _dtype_fields(LINE_SMETA) + [(str(LINE_SMETA.itemsize), "8 x ceil(LUNs / 64)", "lun_bitmap")]


def check_line_emeta():
    from oxhost.pblk.metadata import COUNTERS_MAX, LINE_EMETA, WA_COUNTERS
    e = LINE_EMETA.itemsize
    return _dtype_fields(LINE_EMETA) + [
        (str(e), "8 x ceil(LUNs / 64)", "bb_bitmap"),
        ("after it", str(WA_COUNTERS.itemsize), "wa_counters (user, gc, pad)"),
        ("after that", f"8 x (1 + {COUNTERS_MAX})", "counters: u64 count, then the values")]


def check_pblk_counters():
    from oxhost.pblk.metadata import COUNTERS
    return [(str(i), name) for i, name in enumerate(COUNTERS)]


def check_pblk_sizes():
    from oxhost.pblk.core import DRAIN_AT
    from oxhost.pblk.metadata import COUNTERS
    from oxhost.pblk.params import PblkParams
    from oxhost.pblk.trim import records_per_sector
    lg = _host_lines()
    m = lg.meta
    e1, e2, e3 = m.emeta_sections
    return [("lines", _n(lg.nlines)), ("blocks per line (LUNs)", _n(lg.nluns)),
            ("sectors per write unit", _n(lg.unit_secs)), ("write units per line", _n(lg.units_per_line)),
            ("sectors per line", _n(lg.sec_per_line)), ("smeta sectors", _n(m.smeta_secs)),
            ("emeta sectors", _n(m.emeta_secs)),
            ("emeta sections [1] / [2] / [3], sectors", f"{e1} / {e2} / {e3}"),
            ("LBA list entries (nr_lbas)", _n(m.nr_lba_slots)), ("counters kept in emeta", _n(len(COUNTERS))),
            ("exported sectors", _n(lg.capacity_sectors)),
            ("write buffer entries", _n(PblkParams().write_buffer_entries)),
            ("buffered entries that start a drain", _n(DRAIN_AT)),
            ("records per TRIM sector", _n(records_per_sector()))]


def check_pblk_trim():
    from oxhost.pblk.trim import TRIM_HEADER, TRIM_RECORD
    return _dtype_fields(TRIM_HEADER) + [(str(TRIM_HEADER.itemsize + int(o)), s, f"record.{n}")
                                         for o, s, n in _dtype_fields(TRIM_RECORD)]


def check_appnvm_unit_header():
    from oxemu.device.appnvm.layout import unit_header_dtype
    return _dtype_fields(unit_header_dtype(_geometry().nplanes * _geometry().nsectors))


def check_appnvm_kinds():
    from oxemu.device.appnvm.layout import Stream, UnitKind
    return [(str(int(m)), f"UnitKind.{m.name}") for m in UnitKind] + \
           [(str(int(m)), f"Stream.{m.name}") for m in Stream]


def check_ckpt_header():
    from oxemu.device.appnvm.layout import CkptHeader
    return _ctypes_fields(CkptHeader)


def check_block_entry():
    from oxemu.device.appnvm.layout import BLOCK_ENTRY
    return _dtype_fields(BLOCK_ENTRY)


def check_bstate():
    from oxemu.device.appnvm.blocks import BState
    return _plain_enum(BState)


def check_appnvm_trim():
    from oxemu.device.appnvm.layout import TRIM_RECORD
    return _dtype_fields(TRIM_RECORD)


def check_appnvm_provision():
    import dataclasses
    from oxemu.device.appnvm.layout import CKPT_HEADER_NBYTES
    from oxemu.device.appnvm.media import READ_TRIES
    from oxemu.device.appnvm.provisioning import checkpoint_nbytes
    from oxemu.device.appnvm.mapping import Addr
    p = _appnvm_plan()
    rows = [(f.name, _n(getattr(p, f.name))) for f in dataclasses.fields(p)]
    from oxemu.device.appnvm.layout import TRIM_RECORD
    addr = Addr(_geometry())
    return rows + [("checkpoint bytes", _n(checkpoint_nbytes(addr, p.nlbas))),
                   ("checkpoint header bytes", _n(CKPT_HEADER_NBYTES)),
                   ("trim records per unit", _n(addr.unit_nbytes // TRIM_RECORD.itemsize)),
                   ("read tries", _n(READ_TRIES))]


def check_errno():
    from oxhost.blockdev import BlockDeviceError, MediaError, NoSpace, ReadOnly
    return [(c.__name__, errno.errorcode[c.errno]) for c in (BlockDeviceError, MediaError, NoSpace, ReadOnly)]


def check_nvme_status_class():
    from oxhost.nvme.errors import _BY_STATUS
    return [(_hex(int(s), 4), s.name, cls.__name__) for s, cls in _BY_STATUS.items()]


def check_fault_mixes():
    from oxhost.torture import FAULT_MIXES
    return [(name, key, str(rate)) for name, kw in FAULT_MIXES.items() for key, rate in kw.items()]


def check_torture_constants():
    from oxhost.torture.campaign import CUT_WINDOW, OPS_PER_ROUND, READ_CHUNK, default_geometry
    from oxhost.torture.ext4 import CUT_WINDOW as EXT4_CUT_WINDOW, EXT4_GEOMETRY, FILES_PER_ROUND
    g, e = default_geometry(), EXT4_GEOMETRY
    return [("geometry", f"{g.nchannels}x{g.nluns}x{g.nblocks}x{g.npages}"),
            ("host requests per round", _n(OPS_PER_ROUND)),
            ("random cut window, media operations", _n(CUT_WINDOW)),
            ("sectors per verification read", _n(READ_CHUNK)),
            ("ext4 geometry", f"{e.nchannels}x{e.nluns}x{e.nblocks}x{e.npages}"),
            ("ext4 files per round", _n(FILES_PER_ROUND)),
            ("ext4 cut window, media operations", _n(EXT4_CUT_WINDOW))]


def check_blocklog():
    from oxhost import blocklog
    return [(rec.decode(), name) for rec, name in ((blocklog.WRITE, "WRITE"), (blocklog.ZERO, "ZERO"),
                                                 (blocklog.FLUSH, "FLUSH"), (blocklog.FAILED, "FAILED"),
                                                 (blocklog.READ, "READ"), (blocklog.BACKGROUND, "BACKGROUND"))]


# ---------------------------------------------------------------- zoned namespaces (docs/zns.md)
def check_zns_default():
    """The zones of the default geometry and configuration, and the zoned FTL's capacity."""
    from oxemu import ZnsParams
    from oxemu.device.zns.layout import ZoneLayout
    from oxftl.zoned import ZonedFtl
    from oxhost.stack import ZONE_UNITS
    g = _geometry()
    lay = ZoneLayout(g, ZnsParams())
    sb = g.sector_nbytes
    pages = lay.zcap // lay.unit
    ftl = int(lay.nzones // ZONE_UNITS * ZONE_UNITS * (1 - ZonedFtl.OP)) * pages * lay.unit
    return [("zone LUNs", str(lay.zone_luns)), ("zones", _n(lay.nzones)),
            ("zone size", f"{_n(lay.zsze)} LBAs ({_n(lay.zsze * sb)} bytes)"),
            ("zone capacity", f"{_n(lay.zcap)} LBAs ({_n(lay.zcap * sb)} bytes)"),
            ("write unit", f"{lay.unit} LBAs"), ("namespace", f"{_n(lay.nlbas)} LBAs ({_n(lay.nlbas * sb)} bytes)"),
            ("zoned FTL volume", f"{_n(ftl * sb)} bytes")]


def check_zns_config():
    import dataclasses
    from oxhost.config import ZnsConfig
    return [(f"zns.{f.name}", str(f.default)) for f in dataclasses.fields(ZnsConfig)]


def check_zone_state():
    from oxemu.wire import ZoneState
    return _enum(ZoneState, 1)


def check_zone_action():
    from oxemu.wire import ZoneAction
    return _enum(ZoneAction)


def check_zone_filter():
    from oxemu.wire import ZoneReportFilter
    return _enum(ZoneReportFilter, 1)


def check_zone_descriptor():
    from oxemu.wire import ZoneDescriptor
    return _ctypes_fields(ZoneDescriptor)


def check_zone_record():
    from oxemu.device.zns.layout import ZONE_RECORD
    return _dtype_fields(ZONE_RECORD)


def check_zone_shape():
    from oxemu.device.zns.layout import ZONE_SHAPE
    return _dtype_fields(ZONE_SHAPE)


CHECKS = {name[len("check_"):].replace("_", "-"): fn for name, fn in list(globals().items())
          if name.startswith("check_") and callable(fn)}


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_links_point_to_files_of_the_repository(page):
    bad = []
    for target in _links(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):          # http:, https:, mailto:
            bad.append(f"{target} (a link out of the repository: the docs explain themselves)")
            continue
        path, _, frag = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if ROOT not in dest.parents and dest != ROOT:
            bad.append(f"{target} (outside the repository)")
        elif not dest.exists():
            bad.append(f"{target} (no such file)")
        elif frag and dest.suffix == ".md" and frag not in _anchors(dest):
            bad.append(f"{target} (no heading #{frag} in {dest.name})")
    assert not bad, f"{page.name}: broken links: {bad}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_docs_name_no_file_outside_the_repository(page):
    text = page.read_text()
    bad = [m.group(0) for m in OUTSIDE.finditer(text)]
    for span in CODE_SPAN.findall(_prose(text)):
        if span.startswith("../") and ROOT not in (page.parent / span).resolve().parents:
            bad.append(span)
    assert not bad, f"{page.name} sends readers outside the repository: {bad}"


def test_readme_design_line_points_into_docs():
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.lstrip("- ").startswith("Design:")]
    assert lines, "README.md has no 'Design:' line"
    assert all("docs/" in ln for ln in lines), lines


def test_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    linked = {Path(t.partition("#")[0]).name for t in _links(index)}
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in linked]
    assert not missing, f"docs/README.md does not list {missing}"


def _click_help(cmd, path, parent=None):
    ctx = click.Context(cmd, info_name=path[-1], parent=parent)
    yield " ".join(path), cmd.get_help(ctx)
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            yield from _click_help(cmd.get_command(ctx, name), path + [name], ctx)


def test_help_texts_name_no_file_outside_the_repository():
    """Every `ox ... --help`, the argparse tools' descriptions (their module docstrings) and
    the comments `Config.to_toml()` writes next to every key."""
    from oxhost.cli import main
    from oxhost.config import Config
    texts = dict(_click_help(main, ["ox"]))
    assert len(texts) > 20, "the ox command tree was not walked"
    for path in [*(ROOT / "oxhost").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        src = path.read_text()
        if "ArgumentParser(" in src and "__doc__" in src:
            texts[path.relative_to(ROOT).as_posix()] = ast.get_docstring(ast.parse(src)) or ""
    texts["Config.to_toml()"] = Config.default().to_toml()
    bad = {k: m.group(0) for k, t in texts.items() for m in [OUTSIDE.search(t)] if m}
    assert not bad, f"user-visible text points outside the repository: {bad}"


def test_design_boundary_holds_host_imports_only_the_public_face_of_oxemu():
    """docs/design.md: oxhost reaches oxemu only through `oxemu` and `oxemu.wire`; oxemu
    never imports oxhost."""
    bad = []
    for pkg, suspect, forbidden in (
            ("oxhost", r"(from|import)\s+oxemu\.(?!wire\b)",
             lambda m: m.startswith("oxemu.") and not m.startswith("oxemu.wire")),
            ("oxemu", r"(from|import)\s+oxhost\b", lambda m: m == "oxhost" or m.startswith("oxhost."))):
        for path in (ROOT / pkg).rglob("*.py"):
            src = path.read_text()
            if not re.search(suspect, src):             # parse only the files that may break it
                continue
            for node in ast.walk(ast.parse(src)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                         else [])
                bad += [f"{path.relative_to(ROOT)}: {n}" for n in names if forbidden(n)]
    assert not bad, bad


def test_checked_tables_and_checks_match_one_to_one():
    marked = set(all_checked_tables())
    assert marked - set(CHECKS) == set(), f"tables marked with no check: {sorted(marked - set(CHECKS))}"
    assert set(CHECKS) - marked == set(), f"checks with no table in docs/: {sorted(set(CHECKS) - marked)}"


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_checked_table_matches_the_code(name):
    tables = all_checked_tables()
    if name not in tables:
        pytest.fail(f"no table marked <!-- checked: {name} --> in README.md or docs/")
    page, rows = tables[name]
    want = list(_expected(name))
    got = [tuple(r[:len(w)]) for r, w in zip(rows, want)]
    msg = (f"{page.name}, table {name!r}: the code gives these leading columns "
           f"(python tests/test_docs.py {name}):\n" + "\n".join(_row(w) for w in want))
    assert len(rows) == len(want), msg
    assert got == want, msg


def test_capacity_in_the_readme_is_the_code_s():
    """The exported capacity the README quotes is what pblk and AppNVM export."""
    pblk, appnvm = _expected("capacity")
    assert pblk[3] == appnvm[3]
    text = (ROOT / "README.md").read_text()
    quoted = re.findall(r"\b\d{1,3}(?:,\d{3}){3}\b(?= bytes)", text)
    assert quoted and set(quoted) == {pblk[3]}, f"README.md quotes {quoted}, the code exports {pblk[3]}"


def test_numbers_in_docs_prose_come_from_checked_tables():
    """A number of 1,000 or more written with separators anywhere in docs/ is one that a
    checked table computes from the code (or the SMART data unit), so prose cannot keep
    a figure the code no longer has."""
    from oxemu.wire import SMART_DATA_UNIT_NBYTES
    known = {_n(SMART_DATA_UNIT_NBYTES)}
    for name in CHECKS:
        for row in _expected(name):
            for cell in row:
                known.update(re.findall(r"\d{1,3}(?:,\d{3})+", str(cell)))
    bad = [(p.name, m) for p in DOCS.glob("*.md")
           for m in re.findall(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![\d,])", p.read_text()) if m not in known]
    assert not bad, f"numbers no checked table computes: {bad}"


@functools.lru_cache(maxsize=None)
def _expected(name: str) -> tuple:
    return tuple(tuple(str(c) for c in r) for r in CHECKS[name]())


def _row(cells) -> str:
    return "| " + " | ".join(f"`{c}`" if re.match(r"^[\w.]+$", c) and not c[0].isdigit() else c
                             for c in cells) + " |"


if __name__ == "__main__":
    sys.path[0] = str(ROOT)                 # the packages, not tests/oxemu and tests/oxhost
    ap = argparse.ArgumentParser(description="Print the rows the code gives for a checked table.")
    ap.add_argument("names", nargs="*", help=f"one of: {', '.join(sorted(CHECKS))} (default: all)")
    args = ap.parse_args()
    for n in args.names or sorted(CHECKS):
        print(f"<!-- checked: {n} -->")
        for r in CHECKS[n]():
            print(_row([str(c) for c in r]))
        print()
