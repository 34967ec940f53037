"""Disk-file copies of a campaign: byte-identical, and as sparse as their source, also when
made over an older copy in place."""
import os

from oxhost.torture.disk import copy_sparse, scratch_dir

MIB = 1 << 20


def _sparse(path, size, extents):
    with open(path, "wb") as f:
        f.truncate(size)
        for off, byte, n in extents:
            f.seek(off)
            f.write(bytes([byte]) * n)


def _allocated(path) -> int:
    return os.stat(path).st_blocks * 512


def test_copy_sparse_is_byte_identical_and_copies_only_the_data(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _sparse(src, 16 * MIB, [(0, 1, 4096), (5 * MIB, 2, 3 * MIB), (16 * MIB - 4096, 3, 4096)])
    copy_sparse(str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert _allocated(dst) <= _allocated(src) + 64 * 1024


def test_copy_sparse_over_an_older_copy_punches_the_holes_it_has_written(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _sparse(src, 16 * MIB, [(MIB, 7, MIB)])
    _sparse(dst, 16 * MIB, [(0, 9, 8 * MIB), (12 * MIB, 9, MIB)])      # a round wrote all over it
    copy_sparse(str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()
    assert _allocated(dst) <= _allocated(src) + 64 * 1024


def test_scratch_dir_is_a_new_writable_directory():
    d = scratch_dir()
    try:
        assert os.path.isdir(d) and os.access(d, os.W_OK) and not os.listdir(d)
    finally:
        os.rmdir(d)
