"""liblightnvm buffers: seeded fill, diff, and zero-copy buffers in guest RAM."""
import numpy as np
import pytest

from oxhost.lightnvm import LightnvmError, buf_diff, buf_fill


def test_buf_fill_is_reproducible_per_seed():
    a = buf_fill(np.empty(8192, np.uint8), 3)
    b = buf_fill(np.empty(8192, np.uint8), 3)
    c = buf_fill(np.empty(8192, np.uint8), 4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a)) > 200                        # not a constant pattern


def test_buf_diff_counts_differing_bytes_and_length_mismatch():
    a = np.zeros(100, np.uint8)
    b = a.copy()
    assert buf_diff(a, b) == 0
    b[[3, 50, 99]] = 1
    assert buf_diff(a, b) == 3
    assert buf_diff(a, b[:90]) == 2 + 10
    assert buf_diff(a.view(np.uint32), a) == 0            # compared as bytes


def test_buf_alloc_lives_in_guest_ram_zeroed_and_can_be_freed(dev):
    ram = dev.driver.ram
    free0 = dev.driver.pool.free_nbytes
    b = dev.buf_alloc(10_000)
    assert b.nbytes == 10_000 and not b.any()
    off = b.ctypes.data - ram.ctypes.data
    assert 0 <= off and off + b.nbytes <= ram.shape[0] and off % 4096 == 0
    b[:] = 0x3C
    assert (ram[off:off + b.nbytes] == 0x3C).all()
    dev.buf_free(b)
    assert dev.driver.pool.free_nbytes == free0
    with pytest.raises(LightnvmError):
        dev.buf_free(np.zeros(10, np.uint8))
