"""Self-describing sectors: every sector a torture workload writes names its LBA and
generation and carries a checksum of its payload, so a read tells at once whether it got
the right sector, which version, or garbage (a torn or misdirected write)."""
import numpy as np

SECTOR = 4096
MAGIC = int.from_bytes(b"OXTS", "little")
WORDS = SECTOR // 8
HEADER_WORDS = 3                    # magic | checksum, lba, generation
_MUL = np.uint64(0x9E3779B97F4A7C15)
_GEN = np.uint64(0xC2B2AE3D27D4EB4F)
_POS = np.arange(WORDS, dtype=np.uint64) * np.uint64(0x165667B19E3779F9)
_POS_FOLD = np.bitwise_xor.reduce(_POS[HEADER_WORDS:])
assert (WORDS - HEADER_WORDS) % 2 == 1           # so the payload's xor keeps the seed once
_ROWS = 64                                       # sectors checked at a time: temporaries the allocator reuses


class Verdict:
    """What a read sector is, per sector (values of `classify`)."""
    STAMP = 0          # a well-formed stamp of the expected LBA
    ZERO = 1           # all zeros
    GARBAGE = 2        # neither: torn, corrupted, or another LBA's sector


def _payload(lbas: np.ndarray, gens: np.ndarray) -> np.ndarray:
    seed = (lbas.astype(np.uint64) * _MUL) ^ (gens.astype(np.uint64) * _GEN)
    return seed[:, None] ^ _POS[None, :]


def _fold(words: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor.reduce(words[:, HEADER_WORDS:], axis=1)
    return (x ^ (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


def make(lbas: np.ndarray, gen: int) -> np.ndarray:
    """Sectors for lbas, all of generation gen: (k * SECTOR,) uint8."""
    lbas = np.asarray(lbas, dtype=np.int64)
    w = _payload(lbas, np.full(lbas.size, gen, dtype=np.int64))
    w[:, 0] = np.uint64(MAGIC) | (_fold(w) << np.uint64(32))
    w[:, 1] = lbas.astype(np.uint64)
    w[:, 2] = np.uint64(gen)
    return w.reshape(-1).view(np.uint8)


def classify(data: np.ndarray, lbas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(verdict per sector, generation per sector) of sectors read at lbas.

    A stamp is exact: every payload word as `make` writes it and the header's checksum
    of them. Payload word j is seed ^ _POS[j], so it is checked as (word ^ _POS[j]) ==
    seed, and the checksum of an exact payload is known from the seed alone."""
    w = np.ascontiguousarray(data).reshape(-1).view(np.uint64).reshape(-1, WORDS)
    lbas = np.asarray(lbas, dtype=np.int64)
    gens = w[:, 2].astype(np.int64)
    verdict = np.full(lbas.size, Verdict.GARBAGE, dtype=np.uint8)
    maybe_zero = np.flatnonzero(w[:, 0] == 0)
    if maybe_zero.size:
        verdict[maybe_zero[~w[maybe_zero].any(axis=1)]] = Verdict.ZERO
    cand = ((w[:, 0] & np.uint64(0xFFFFFFFF)) == np.uint64(MAGIC)) & (w[:, 1] == lbas.astype(np.uint64))
    i = np.flatnonzero(cand)
    if i.size:
        seed = (lbas[i].astype(np.uint64) * _MUL) ^ (gens[i].astype(np.uint64) * _GEN)
        good = np.empty(i.size, dtype=bool)
        for s in range(0, i.size, _ROWS):           # not one temporary of the whole read: fresh memory is slow
            rows = w[i[s:s + _ROWS], HEADER_WORDS:]
            x = np.bitwise_xor(rows, _POS[HEADER_WORDS:])
            np.bitwise_xor(x, seed[s:s + _ROWS, None], out=x)
            good[s:s + _ROWS] = ~x.any(axis=1)
        fold = seed ^ _POS_FOLD                       # the xor of the payload words (odd count)
        good &= (w[i, 0] >> np.uint64(32)) == ((fold ^ (fold >> np.uint64(32))) & np.uint64(0xFFFFFFFF))
        verdict[i[good]] = Verdict.STAMP
    gens[verdict != Verdict.STAMP] = -1
    return verdict, gens
