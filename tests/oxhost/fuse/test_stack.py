"""open_stack: the stack a volume is served from (machine, driver, pblk or AppNVM)."""
import pytest

from oxemu import Geometry, StoreError
from oxhost.stack import StackError, open_stack, parse_luns

SMALL = Geometry.small(nblocks=16, npages=32)       # 4 LUNs x 16 chunks of 1 MiB


def test_stack_parse_luns():
    assert parse_luns("0-31") == (0, 31)
    assert parse_luns("3-3") == (3, 3)
    assert parse_luns(None) is None
    for bad in ("7", "a-b", "4-2", "-1-3", "1-2-3"):
        with pytest.raises(StackError):
            parse_luns(bad)


def test_stack_pblk_capacity_follows_the_80_percent_rule():
    with open_stack(volatile=True, geometry=SMALL) as st:
        chunks = 4 * 16
        assert st.blockdev.size == (chunks * 80 // 100) * 32 * 2 * 4 * 4096
        assert st.luns == (0, 3)                   # the default 0-31 means all of them here
        info = st.info()
        assert info["mode"] == "pblk" and info["volatile"] and info["geometry"]["nluns"] == 2


def test_stack_lun_range_selects_the_luns():
    with open_stack(volatile=True, geometry=SMALL, luns=(1, 2)) as st:
        assert st.blockdev.size == (2 * 16 * 80 // 100) * 256 * 4096
        assert st.info()["luns"] == [1, 2]
    with pytest.raises(StackError, match="outside"):
        open_stack(volatile=True, geometry=SMALL, luns=(2, 4))


def test_stack_roundtrip_and_close_is_idempotent():
    st = open_stack(volatile=True, geometry=SMALL)
    st.blockdev.write(8192, b"x" * 5000)
    assert st.blockdev.read(8192, 5000).tobytes() == b"x" * 5000
    st.close()
    st.close()


def test_stack_disk_geometry_is_adopted_and_a_mismatch_refused(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(disk=disk, geometry=SMALL) as st:
        st.blockdev.write(0, b"k" * 4096)
    with open_stack(disk=disk) as st:              # no geometry given: the file's own
        assert st.geometry == SMALL
        assert st.blockdev.read(0, 4096).tobytes() == b"k" * 4096
    with pytest.raises(StoreError, match="geometry"):
        open_stack(disk=disk, geometry=Geometry.small())


def test_stack_rejects_unknown_mode_and_directory_disk(tmp_path):
    with pytest.raises(StackError, match="mode"):
        open_stack(mode="zns", volatile=True)
    with pytest.raises(StackError, match="directory"):
        open_stack(disk=str(tmp_path))


def test_stack_appnvm_volume(tmp_path):
    with open_stack(mode="appnvm", volatile=True, geometry=SMALL) as st:
        assert st.mode == "appnvm" and st.luns is None
        st.blockdev.write(4096, b"a" * 4096)
        assert st.blockdev.read(4096, 4096).tobytes() == b"a" * 4096


def _sha(path) -> str:
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_stack_refuses_an_appnvm_disk_in_pblk_mode_and_leaves_it_byte_identical(tmp_path):
    """One forgotten --mode once made pblk take an AppNVM disk as empty and write over it."""
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="appnvm", disk=disk, geometry=SMALL) as st:
        st.blockdev.write(0, b"A" * (1 << 20))
    before = _sha(disk)
    with pytest.raises(StackError, match="holds an AppNVM volume.*--mode appnvm.*ox format"):
        open_stack(mode="pblk", disk=disk)
    assert _sha(disk) == before
    with open_stack(disk=disk) as st:              # no mode given: what the disk holds
        assert st.mode == "appnvm" and st.blockdev.read(0, 1 << 20).tobytes() == b"A" * (1 << 20)


def test_stack_refuses_a_pblk_disk_in_appnvm_mode_and_leaves_it_byte_identical(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="pblk", disk=disk, geometry=SMALL) as st:
        st.blockdev.write(0, b"P" * 8192)
    before = _sha(disk)
    with pytest.raises(StackError, match="holds a pblk volume on LUNs 0-3.*--mode pblk --luns 0-3"):
        open_stack(mode="appnvm", disk=disk)
    assert _sha(disk) == before


def test_stack_refuses_a_pblk_volume_opened_with_another_lun_range(tmp_path):
    """Writing 2 MiB through --luns 0-1 on a volume made on LUNs 0-3 once replaced half of it."""
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="pblk", disk=disk, geometry=SMALL, luns=(0, 3)) as st:
        st.blockdev.write(0, b"L" * (4 << 20))
    before = _sha(disk)
    with pytest.raises(StackError, match="LUNs 0-3, not 0-1.*--luns 0-3"):
        open_stack(mode="pblk", disk=disk, luns=(0, 1))
    assert _sha(disk) == before
    with open_stack(disk=disk) as st:              # no range given: the volume's own
        assert st.luns == (0, 3) and st.blockdev.read(0, 4 << 20).tobytes() == b"L" * (4 << 20)
