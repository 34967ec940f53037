"""Buffers (liblightnvm nvm_buf_*): fill with a reproducible pattern, diff two buffers."""
import numpy as np


def buf_fill(buf: np.ndarray, seed: int = 0) -> np.ndarray:
    """Fill in place with bytes from a seeded generator; returns buf."""
    rng = np.random.default_rng(seed)
    buf.reshape(-1).view(np.uint8)[:] = rng.integers(0, 256, buf.nbytes, dtype=np.uint8)
    return buf


def buf_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Number of differing bytes (0 when equal); a length mismatch counts the excess."""
    a = np.asarray(a).reshape(-1).view(np.uint8)
    b = np.asarray(b).reshape(-1).view(np.uint8)
    n = min(a.size, b.size)
    return int(np.count_nonzero(a[:n] != b[:n])) + abs(a.size - b.size)
