"""DmaPool: first-fit, page-granular allocation of guest RAM for queues and buffers."""
import pytest

from oxhost.driver import DmaPool, OutOfDmaMemory

PAGE = 4096


@pytest.fixture
def pool(machine):
    return DmaPool(machine.ram, 1 << 20)


def test_dmapool_hands_out_page_aligned_disjoint_extents(pool, machine):
    bufs = [pool.alloc(n) for n in (1, 4096, 4097, 100_000)]
    spans = sorted((b.addr, b.addr + -(-b.nbytes // PAGE) * PAGE) for b in bufs)
    assert all(a % PAGE == 0 for a, _ in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))
    assert all(b.array.size == b.nbytes for b in bufs)
    b = bufs[2]
    b.array[:] = 0xAB
    assert (machine.ram[b.addr:b.addr + b.nbytes] == 0xAB).all()


def test_dmapool_zeroes_by_default(pool):
    b = pool.alloc(PAGE)
    b.array[:] = 1
    b.free()
    assert not pool.alloc(PAGE).array.any()


def test_dmapool_free_coalesces_back_to_one_extent(pool):
    start = pool.free_nbytes
    bufs = [pool.alloc(3 * PAGE) for _ in range(6)]
    for b in bufs[::2] + bufs[1::2]:
        b.free()
    assert pool.free_nbytes == start
    big = pool.alloc(start)                              # the whole range is one extent again
    assert big.addr == 1 << 20


def test_dmapool_free_twice_is_harmless(pool):
    start = pool.free_nbytes
    b = pool.alloc(PAGE)
    b.free()
    b.free()
    assert pool.free_nbytes == start


def test_dmapool_out_of_memory_is_a_driver_error(pool):
    with pytest.raises(OutOfDmaMemory):
        pool.alloc(pool.free_nbytes + PAGE)
