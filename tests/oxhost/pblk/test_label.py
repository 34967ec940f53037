"""The media label and the target (SPEC 8, 9): a pblk volume is opened only through the LUN
range it was made on; the first open records the target (LUN range, instance uuid,
capacity); lines of another instance are not this volume's data."""
import pytest

from oxemu.wire import TargetKind
from oxhost.lightnvm import Device
from oxhost.pblk import Pblk, PblkError, PblkWrongTarget
from oxhost.pblk.lines import LineState

from .conftest import SECTOR, small_geometry, stamp


def test_first_open_records_the_target_in_the_media_label(disk_pblk):
    p = disk_pblk()
    label = p.dev.driver.media_label()
    assert label.target == TargetKind.PBLK
    assert (label.lun_begin, label.lun_end) == (0, 3)
    assert bytes(label.uuid) == p.lm.uuid and any(p.lm.uuid)
    assert label.capacity_bytes == p.size
    p.write_sectors(0, stamp(0, 10))
    p.close()
    q = Pblk(p.dev)
    assert q.lm.uuid == p.lm.uuid                      # the label's uuid is the instance's


def test_opening_a_volume_through_another_lun_range_is_refused_and_writes_nothing(make_machine, tmp_path):
    """The report: 2 MiB written through --luns 0-1 to a volume made on LUNs 0-3 replaced
    496 of its 1024 sectors. The open is refused, with one line naming the flag."""
    path = str(tmp_path / "ox.disk")
    m = make_machine(geometry=small_geometry(), volt=0, disk=path, ram_mib=64)
    p = Pblk(Device.open(m))
    p.write_sectors(0, stamp(0, 1024))
    p.close()
    programs = m.stats()["media"]["programs"]
    erases = m.stats()["media"]["erases"]
    with pytest.raises(PblkWrongTarget) as e:
        Pblk(p.dev, 0, 1)
    assert str(e.value) == "the media holds a pblk volume on LUNs 0-3: open it with --luns 0-3"
    assert isinstance(e.value, PblkError) and "\n" not in str(e.value)
    assert m.stats()["media"]["programs"] == programs and m.stats()["media"]["erases"] == erases
    q = Pblk(p.dev, 0, 3)
    assert (q.read_sectors(0, 1024) == stamp(0, 1024)).all()


def test_lines_of_another_pblk_instance_are_free_space(disk_pblk):
    """Recovery keeps only lines whose smeta carries the label's uuid; another instance's
    lines (say, an old volume the label no longer names) hold no data of this one."""
    p = disk_pblk()
    per_line = p.lm.reserve_secs
    p.write_sectors(0, stamp(0, per_line, tag=1))       # line 0, closed
    p.flush()
    mine = p.lm.uuid
    p.lm.uuid = b"\x5a" * 16                            # the lines opened from now on
    p.write_sectors(per_line, stamp(per_line, 2 * per_line, tag=2))
    p.close()
    foreign = [ln.id for ln in p.lm.lines if ln.state != LineState.FREE and ln.id != 0]
    q = Pblk(p.dev)
    assert q.lm.uuid == mine
    assert q.recovery["foreign_lines"] == len(foreign) > 0
    assert all(q.lm.lines[i].state == LineState.FREE for i in foreign)
    assert (q.read_sectors(0, per_line) == stamp(0, per_line, tag=1)).all()
    assert not q.read_sectors(per_line, 2 * per_line).any()
    q.check()


def test_a_target_on_disjoint_luns_leaves_the_label_to_the_first(make_pblk):
    """The label names one target; a second on other LUNs opens and keeps its own data."""
    a = make_pblk(lun_begin=0, lun_end=1)
    b = Pblk(a.dev, 2, 3)
    label = a.dev.driver.media_label()
    assert (label.lun_begin, label.lun_end) == (0, 1) and bytes(label.uuid) == a.lm.uuid
    assert b.lm.uuid != a.lm.uuid
    b.write_sectors(0, stamp(0, 8))
    b.close()
    assert (Pblk(a.dev, 2, 3).read_sectors(0, 8) == stamp(0, 8)).all()
    assert a.size == b.size == (2 * 16 * 80 // 100) * 128 * SECTOR
