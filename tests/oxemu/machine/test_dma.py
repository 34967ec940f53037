"""The DMA engine: the device's only door into guest RAM, bounds-checked on every access."""
import numpy as np
import pytest

from oxemu.machine import DmaError

PAGE = 4096


@pytest.fixture
def dma(machine):
    return machine.dma


@pytest.mark.parametrize("addr,n", [(-1, 1), (0, -1), ("end", 1), ("end-1", 2), (1 << 62, 8)])
def test_dma_refuses_any_access_outside_guest_ram(machine, dma, addr, n):
    end = machine.ram.shape[0]
    addr = {"end": end, "end-1": end - 1}.get(addr, addr)
    with pytest.raises(DmaError):
        dma.view(addr, n)
    if n > 0:
        with pytest.raises(DmaError):
            dma.write(addr, np.zeros(n, np.uint8))


def test_dma_allows_the_last_byte(machine, dma):
    end = machine.ram.shape[0]
    dma.write(end - 1, b"\x7f")
    assert machine.ram[end - 1] == 0x7F
    assert dma.read(end - 1, 1)[0] == 0x7F


def test_dma_views_are_live_guest_memory(machine, dma):
    v = dma.view(0x20000, 16)
    v[:] = 9
    assert (machine.ram[0x20000:0x20010] == 9).all()


def test_dma_u64_lists_must_be_aligned_and_inside(machine, dma):
    machine.ram[0x30000:0x30010].view("<u8")[:] = [1, 2]
    assert dma.read_u64s(0x30000, 2).tolist() == [1, 2]
    with pytest.raises(DmaError):
        dma.read_u64s(0x30004, 1)
    with pytest.raises(DmaError):
        dma.read_u64s(machine.ram.shape[0] - 8, 2)


def test_dma_gather_and_scatter_follow_scattered_pages_in_order(machine, dma):
    pages = np.array([0x40000, 0x43000, 0x41000], dtype=np.int64)
    data = np.arange(3 * PAGE - 100, dtype=np.uint32).astype(np.uint8)
    machine.ram[0x40000:0x44000] = 0xEE
    dma.scatter(pages, 100, data)
    assert (machine.ram[0x40000:0x40000 + 100] == 0xEE).all()              # before the offset
    assert np.array_equal(machine.ram[0x40000 + 100:0x41000], data[:PAGE - 100])
    assert np.array_equal(machine.ram[0x43000:0x44000], data[PAGE - 100:2 * PAGE - 100])
    assert np.array_equal(machine.ram[0x41000:0x42000], data[2 * PAGE - 100:])
    assert (machine.ram[0x42000:0x43000] == 0xEE).all()                     # not in the list
    assert np.array_equal(dma.gather(pages, 100, data.size), data)


def test_dma_scatter_keeps_the_tail_of_the_last_page(machine, dma):
    pages = np.array([0x50000, 0x52000], dtype=np.int64)
    machine.ram[0x50000:0x53000] = 0xEE
    dma.scatter(pages, 0, np.ones(PAGE + 10, np.uint8))
    assert (machine.ram[0x52000:0x5200A] == 1).all()
    assert (machine.ram[0x5200A:0x53000] == 0xEE).all()


@pytest.mark.parametrize("bad", ["outside", "negative", "unaligned"])
def test_dma_gather_and_scatter_refuse_bad_pages(machine, dma, bad):
    p = {"outside": machine.ram.shape[0], "negative": -PAGE, "unaligned": 0x61000 + 8}[bad]
    pages = np.array([0x60000, p], dtype=np.int64)
    with pytest.raises(DmaError):
        dma.gather(pages, 0, 2 * PAGE)
    with pytest.raises(DmaError):
        dma.scatter(pages, 0, np.zeros(2 * PAGE, np.uint8))


def test_dma_counts_bytes_moved(dma):
    r, w = dma.bytes_read, dma.bytes_written
    dma.read(0x70000, 100)
    dma.write(0x70000, np.zeros(30, np.uint8))
    assert (dma.bytes_read - r, dma.bytes_written - w) == (100, 30)
