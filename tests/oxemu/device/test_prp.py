"""DMA pointers the host hands the device (PRP1, PRP2, PRP lists, metadata and PPA list
pointers): bad ones complete with an NVMe status and the device keeps working."""
import numpy as np
import pytest

from oxemu.wire import AdminOpc, Cns, NvmOpc, PMode
from oxhost.lightnvm import buf_diff

from tests.helpers import SECTOR, block_planes, page_addrs, ppas_of, raw_io, stamp_sectors

XFER_ERROR = 0x0004
PRP_OFFSET = 0x0013


@pytest.fixture
def written(dev):
    """Block 1 of (0,0) erased with page 0 written; page 1 left free for writes."""
    dev.addr_erase(block_planes(0, 0, 1, 2))
    p0 = page_addrs(0, 0, 1, 0, 2)
    data = stamp_sectors(p0, 1)
    dev.addr_write(p0, data)
    return p0, data


def _outside(dev) -> int:
    return dev.driver.ram.shape[0]          # first byte past guest RAM


def _still_works(dev, written):
    p0, data = written
    got, _ = dev.addr_read(p0)
    assert buf_diff(got, data) == 0
    p1 = page_addrs(0, 0, 1, 1, 2)
    d1 = stamp_sectors(p1, 2)
    dev.addr_write(p1, d1)                  # page 1 was never touched by the failed command
    assert buf_diff(dev.addr_read(p1)[0], d1) == 0


@pytest.mark.parametrize("where", ["end", "far", "top"])
def test_prp1_outside_guest_ram_fails_with_0x0004(dev, written, where):
    prp1 = {"end": _outside(dev), "far": 1 << 40, "top": (1 << 64) - SECTOR}[where]
    p0, _ = written
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0[:1]), prp1=prp1)
    assert c.status == XFER_ERROR
    c = raw_io(dev, NvmOpc.PH_WRITE, ppas_of(dev, page_addrs(0, 0, 1, 1, 2)), prp1=prp1,
               control=PMode.DUAL)
    assert c.status == XFER_ERROR
    _still_works(dev, written)


def test_prp2_outside_guest_ram_fails_with_0x0004(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(2 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0[:2]), prp1=buf.addr, prp2=_outside(dev))
    assert c.status == XFER_ERROR
    _still_works(dev, written)


def test_prp_list_entry_outside_guest_ram_fails_with_0x0004(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    lst = dev.driver.pool.alloc(SECTOR)
    ent = lst.array.view("<u8")
    ent[:7] = buf.addr + SECTOR * np.arange(1, 8)
    ent[3] = _outside(dev) + 5 * SECTOR
    buf.array[:] = 0xAB
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=lst.addr)
    assert c.status == XFER_ERROR
    assert (buf.array == 0xAB).all()                 # no partial transfer
    p1 = ppas_of(dev, page_addrs(0, 0, 1, 1, 2))
    c = raw_io(dev, NvmOpc.PH_WRITE, p1, prp1=buf.addr, prp2=lst.addr, control=PMode.DUAL)
    assert c.status == XFER_ERROR
    _still_works(dev, written)


def test_prp_list_pointer_outside_guest_ram_fails_with_0x0004(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=_outside(dev))
    assert c.status == XFER_ERROR
    _still_works(dev, written)


def test_prp1_not_dword_aligned_fails_with_0x0013(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(2 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0[:1]), prp1=buf.addr + 2)
    assert c.status == PRP_OFFSET
    _still_works(dev, written)


def test_prp2_with_an_offset_fails_with_0x0013(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(2 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0[:2]), prp1=buf.addr, prp2=buf.addr + SECTOR + 64)
    assert c.status == PRP_OFFSET
    _still_works(dev, written)


def test_prp_list_entry_with_an_offset_fails_with_0x0013(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    lst = dev.driver.pool.alloc(SECTOR)
    ent = lst.array.view("<u8")
    ent[:7] = buf.addr + SECTOR * np.arange(1, 8)
    ent[2] += 512
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=lst.addr)
    assert c.status == PRP_OFFSET
    _still_works(dev, written)


def test_prp_list_pointer_not_qword_aligned_fails_with_0x0013(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    lst = dev.driver.pool.alloc(SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=lst.addr + 4)
    assert c.status == PRP_OFFSET
    _still_works(dev, written)


def test_prp_list_chaining_to_itself_completes_with_0x0013_instead_of_hanging(dev, written):
    """The last slot of a list page chains to the next list; a chain pointer is a PRP
    entry and has no offset, so a list whose only slot points back at itself is refused."""
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    lst = dev.driver.pool.alloc(SECTOR)
    slot = lst.addr + SECTOR - 8
    lst.array.view("<u8")[-1] = slot
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=slot)
    assert c.status == PRP_OFFSET
    _still_works(dev, written)


def test_prp_list_chained_from_the_last_slot_is_followed(dev, written):
    p0, data = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    lists = dev.driver.pool.alloc(2 * SECTOR)
    first = lists.addr + SECTOR - 16                  # two slots left in the first list page
    u64 = lists.array.view("<u8")
    u64[510] = buf.addr + SECTOR                      # entry for page 2 of the transfer
    u64[511] = lists.addr + SECTOR                    # chain to the second list page
    u64[512:512 + 6] = buf.addr + SECTOR * np.arange(2, 8)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=buf.addr, prp2=first)
    assert c.status == 0
    assert buf_diff(buf.array, data) == 0


def test_prp_list_of_scattered_pages_moves_each_page_to_its_own_place(dev, written):
    """Non-contiguous pages in any order: write gathers them, read scatters them back."""
    drv = dev.driver
    pages = [drv.pool.alloc(SECTOR) for _ in range(8)]
    order = [5, 0, 7, 2, 6, 1, 4, 3]
    p1 = page_addrs(0, 0, 1, 1, 2)
    data = stamp_sectors(p1, 8)
    for i, k in enumerate(order):
        pages[k].array[:] = data[i * SECTOR:(i + 1) * SECTOR]
    lst = drv.pool.alloc(SECTOR)
    lst.array.view("<u8")[:7] = [pages[k].addr for k in order[1:]]
    c = raw_io(dev, NvmOpc.PH_WRITE, ppas_of(dev, p1), prp1=pages[order[0]].addr, prp2=lst.addr,
               control=PMode.DUAL)
    assert c.status == 0
    assert buf_diff(dev.addr_read(p1)[0], data) == 0
    for pg in pages:
        pg.array[:] = 0
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p1), prp1=pages[order[0]].addr, prp2=lst.addr)
    assert c.status == 0
    for i, k in enumerate(order):
        assert np.array_equal(pages[k].array, data[i * SECTOR:(i + 1) * SECTOR])


def test_prp1_with_an_offset_into_scattered_pages_keeps_the_bytes_around_it(dev, written):
    p0, data = written
    drv = dev.driver
    a, b, c_ = (drv.pool.alloc(SECTOR) for _ in range(3))
    for x in (a, b, c_):
        x.array[:] = 0x5A
    lst = drv.pool.alloc(SECTOR)
    lst.array.view("<u8")[:2] = [c_.addr, b.addr]          # backwards: not contiguous
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0[:2]), prp1=a.addr + 256, prp2=lst.addr)
    assert c.status == 0
    got = np.concatenate([a.array[256:], c_.array, b.array[:256]])
    assert buf_diff(got, data[:2 * SECTOR]) == 0
    assert (a.array[:256] == 0x5A).all() and (b.array[256:] == 0x5A).all()


def test_metadata_pointer_outside_guest_ram_fails_with_0x0004(dev, written):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    prp1, prp2 = dev.driver.prps(1, 0, buf.addr, 8 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=prp1, prp2=prp2, mptr=_outside(dev) - 64)
    assert c.status == XFER_ERROR
    p1 = ppas_of(dev, page_addrs(0, 0, 1, 1, 2))
    prp1, prp2 = dev.driver.prps(1, 0, buf.addr, 8 * SECTOR)
    c = raw_io(dev, NvmOpc.PH_WRITE, p1, prp1=prp1, prp2=prp2, mptr=1 << 50, control=PMode.DUAL)
    assert c.status == XFER_ERROR
    _still_works(dev, written)


@pytest.mark.parametrize("delta", [0, 1 << 33, 4], ids=["at-end", "far", "misaligned"])
def test_ppa_list_pointer_outside_guest_ram_or_misaligned_fails_with_0x0004(dev, written, delta):
    p0, _ = written
    buf = dev.driver.pool.alloc(8 * SECTOR)
    prp1, prp2 = dev.driver.prps(1, 0, buf.addr, 8 * SECTOR)
    if delta == 4:
        lst = dev.driver.pool.alloc(SECTOR)
        lst.array.view("<u8")[:8] = ppas_of(dev, p0)
        where = lst.addr + 4
    else:
        where = _outside(dev) - 8 + delta           # the first entry in RAM, the rest not
    c = raw_io(dev, NvmOpc.PH_READ, ppas_of(dev, p0), prp1=prp1, prp2=prp2, list_addr=where)
    assert c.status == XFER_ERROR
    c = raw_io(dev, NvmOpc.PH_ERASE, ppas_of(dev, block_planes(0, 0, 1, 2)), list_addr=where,
               control=PMode.DUAL)
    assert c.status == XFER_ERROR
    _still_works(dev, written)


@pytest.mark.parametrize("opcode,cdw10", [(AdminOpc.IDENTIFY, Cns.CONTROLLER), (AdminOpc.IDENTIFY, Cns.NAMESPACE),
                                          (AdminOpc.NVM_IDENTITY, 0), (AdminOpc.NVM_GET_BBT, 0),
                                          (AdminOpc.GET_LOG_PAGE, 0x01 | (1023 << 16))])
def test_admin_data_pointer_outside_guest_ram_fails_with_0x0004(dev, written, opcode, cdw10):
    c = dev.driver.admin(opcode, nsid=1, prp1=_outside(dev) + SECTOR, cdw10=cdw10)
    assert c.status == XFER_ERROR
    _still_works(dev, written)
