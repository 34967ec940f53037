"""Media written by one FTL is refused by another -- another FTL, another version of it,
the other side, pblk or AppNVM -- with one line, and the disk file stays byte-identical."""
import hashlib

import pytest

from oxemu import Geometry, StoreError
from oxhost.stack import StackError, open_stack

GEO = Geometry.small()
TEMPLATE = "oxftl.template:PageFtl"


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def other_ftl(tmp_path):
    f = tmp_path / "other.py"
    f.write_text("from oxftl.template import PageFtl\n"
                 "class Other(PageFtl):\n    name = 'other'\n"
                 "class Newer(PageFtl):\n    version = 2\n")
    return str(f)


@pytest.mark.parametrize("side", ["host", "device"])
def test_media_of_one_ftl_is_refused_by_every_other_stack_byte_identical(tmp_path, other_ftl, side):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode=f"{TEMPLATE}@{side}", disk=disk, geometry=GEO) as st:
        st.blockdev.write(0, b"T" * 65536)
    before = _sha(disk)
    other_side = "device" if side == "host" else "host"
    for mode in (f"{other_ftl}:Other@{side}", f"{other_ftl}:Newer@{side}", f"{TEMPLATE}@{other_side}",
                 "pblk", "appnvm"):
        with pytest.raises((StackError, StoreError)) as e:
            open_stack(mode=mode, disk=disk)
        assert "\n" not in str(e.value) and "'template' version 1" in str(e.value)
        assert _sha(disk) == before
    with pytest.raises(StackError, match="open it with --ftl FILE.py:CLASS --side " + side):
        open_stack(disk=disk)                              # no mode: the disk says what it is
    assert _sha(disk) == before
    with open_stack(mode=f"{TEMPLATE}@{side}", disk=disk) as st:
        assert st.blockdev.read(0, 65536).tobytes() == b"T" * 65536


def test_a_pblk_disk_is_refused_by_a_plugin_ftl_byte_identical(tmp_path):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode="pblk", disk=disk, geometry=GEO) as st:
        st.blockdev.write(0, b"P" * 8192)
    before = _sha(disk)
    for side in ("host", "device"):
        with pytest.raises(StackError, match="holds a pblk volume on LUNs 0-3, not a volume of FTL 'template'"):
            open_stack(mode=f"{TEMPLATE}@{side}", disk=disk)
    assert _sha(disk) == before
