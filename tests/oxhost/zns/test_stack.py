"""The zoned stacks as a user names them -- `zoned`, `FILE.py:Class@host+zns` -- and the media
label's interface: zns media refused by every 1.2 stack and 1.2 media by every zoned one,
in one line, the disk file byte-identical."""
import hashlib

import numpy as np
import pytest

from oxemu import Geometry, Machine, StoreError
from oxemu.wire import Interface, MediaMode, TargetKind
from oxhost.config import Config
from oxhost.stack import StackError, make_mode, mode_name, open_stack, parse_mode

GEO = Geometry.small(nblocks=16)
TEMPLATE = "oxftl.template:PageFtl"


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_zoned_mode_strings_name_the_zoned_ftl_on_zns():
    assert parse_mode("zoned") == parse_mode("zoned+zns") == ("ftl@host", "oxftl.zoned:ZonedFtl", "host", "zns")
    assert make_mode("zoned", spec="zns") == "zoned" and mode_name("zoned") == "zoned"
    assert mode_name(f"{TEMPLATE}@host+zns") == "PageFtl@host+zns"
    for bad in ("zoned+1.2", "zoned+2.0", "pblk+zns", f"{TEMPLATE}@device+zns"):
        with pytest.raises(StackError):
            parse_mode(bad)


def test_zoned_stack_writes_reads_and_reopens_from_the_label(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="zoned", disk=disk, geometry=GEO) as st:
        assert st.info()["name"] == "zoned" and st.luns is None
        st.blockdev.write(4096, b"Z" * 65536)
        size = st.blockdev.size
    lab = _label(disk)
    assert (lab.mode, lab.interface, lab.target) == (MediaMode.ZONED, Interface.ZNS, TargetKind.FTL)
    assert bytes(lab.ftl_name).rstrip(b"\0") == b"zoned" and lab.capacity_bytes == size
    with open_stack(disk=disk) as st:                                  # no mode: the disk says zoned
        assert st.mode == "zoned" and st.blockdev.read(4096, 65536).tobytes() == b"Z" * 65536


def _label(disk):
    from oxemu import probe_label
    return probe_label(disk)


def test_zns_media_is_refused_by_every_other_stack_byte_identical(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="zoned", disk=disk, geometry=GEO) as st:
        st.blockdev.write(0, b"Z" * 8192)
    before = _sha(disk)
    for mode in ("pblk", "appnvm", f"{TEMPLATE}@host", f"{TEMPLATE}@device", f"{TEMPLATE}@host+zns"):
        with pytest.raises((StackError, StoreError)) as e:
            open_stack(mode=mode, disk=disk)
        msg = str(e.value)
        assert "\n" not in msg and "zoned FTL" in msg, msg
        assert _sha(disk) == before
    for lnvm in (0, 1):                                                # and by the device itself
        with pytest.raises(StoreError, match="zoned namespace"):
            Machine(lnvm=lnvm, volt=0, disk=disk, geometry=GEO)
    assert _sha(disk) == before


@pytest.mark.parametrize("mode", ["pblk", "appnvm", f"{TEMPLATE}@host"])
def test_media_of_a_1_2_stack_is_refused_by_the_zoned_stacks_byte_identical(tmp_path, mode):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode=mode, disk=disk, geometry=GEO) as st:
        st.blockdev.write(0, b"P" * 8192)
    before = _sha(disk)
    for zoned in ("zoned", f"{TEMPLATE}@host+zns"):
        with pytest.raises((StackError, StoreError)) as e:
            open_stack(mode=zoned, disk=disk)
        assert "\n" not in str(e.value) and "interface 1.2, not zns" in str(e.value)
    with pytest.raises(StoreError, match="refusing to use it in zoned mode"):
        Machine(lnvm=0, spec="zns", volt=0, disk=disk, geometry=GEO)
    assert _sha(disk) == before


def test_zoned_stack_refuses_a_lun_range_and_another_zone_shape_unwritten(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with pytest.raises(StackError, match="zones span every LUN"):
        open_stack(mode="zoned", disk=disk, geometry=GEO, luns=(0, 1))
    with open_stack(mode="zoned", disk=disk, geometry=GEO) as st:
        st.blockdev.write(0, b"S" * 4096)
    before = _sha(disk)
    cfg = Config.default().with_overrides(["zns.zone_luns=4"])
    with pytest.raises(StoreError) as e:
        open_stack(mode="zoned", disk=disk, config=cfg)
    assert "zones of 2 LUNs" in str(e.value) and "\n" not in str(e.value)
    assert _sha(disk) == before


def test_a_plugin_ftl_runs_on_zones_and_only_there(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode=f"{TEMPLATE}@host+zns", disk=disk, geometry=GEO) as st:
        data = np.arange(8 * 4096, dtype=np.uint32).view(np.uint8)[:8 * 4096]
        st.blockdev.write_sectors(5, data)
    with pytest.raises(StackError, match="open it with --ftl FILE.py:CLASS --spec zns"):
        open_stack(disk=disk)
    with open_stack(mode=f"{TEMPLATE}@host+zns", disk=disk) as st:
        assert (st.blockdev.read_sectors(5, 8) == data).all()


def test_mount_flags_name_the_zoned_stack():
    from oxhost.cli.common import resolve_mode
    assert resolve_mode("zoned", None, None, None) == resolve_mode(None, None, None, "zns") == "zoned"
    assert resolve_mode(None, "oxftl.template:PageFtl", "host", "zns") == "oxftl.template:PageFtl@host+zns"
    for mode, spec in (("zoned", "1.2"), ("zoned", "2.0"), ("pblk", "zns"), ("appnvm", "zns")):
        with pytest.raises(StackError):
            resolve_mode(mode, None, None, spec)
