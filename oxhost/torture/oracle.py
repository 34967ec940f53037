"""The oracle of a power-cut campaign: for every LBA, which versions a read may return.

Versions are numbered by one generation counter for the whole campaign; a discard is a
version too (zeros). A flush makes the latest version of every LBA durable: from then on a
read must return that version or a newer one written since, never an older one, never
zeros unless a zero version is among those allowed, never garbage."""
from dataclasses import dataclass

import numpy as np

from .stamp import Verdict, classify


@dataclass
class Violation:
    lba: int
    kind: str           # older, zeros, garbage, unreadable, future
    expected: str
    got: str

    def as_dict(self) -> dict:
        return dict(lba=self.lba, kind=self.kind, expected=self.expected, got=self.got)


class Oracle:
    def __init__(self, nsectors: int):
        self.n = nsectors
        self.gen = 0
        self.latest = np.zeros(nsectors, dtype=np.int64)       # newest version, any kind
        self.latest_data = np.full(nsectors, -1, dtype=np.int64)
        self.last_zero = np.zeros(nsectors, dtype=np.int64)    # never written = zeros at gen 0
        self.floor = np.zeros(nsectors, dtype=np.int64)        # oldest version a read may return

    def copy(self) -> "Oracle":
        c = Oracle(self.n)
        c.gen = self.gen
        for name in ("latest", "latest_data", "last_zero", "floor"):
            np.copyto(getattr(c, name), getattr(self, name))
        return c

    def next_gen(self) -> int:
        self.gen += 1
        return self.gen

    def maybe_wrote(self, lba: int, count: int, gen: int) -> None:
        """A write was issued and may land, all or in part (in flight at a cut, or refused
        midway): reads may return it, a flush does not require it."""
        np.maximum(self.latest_data[lba:lba + count], gen, out=self.latest_data[lba:lba + count])

    def maybe_discarded(self, lba: int, count: int, gen: int) -> None:
        np.maximum(self.last_zero[lba:lba + count], gen, out=self.last_zero[lba:lba + count])

    def wrote(self, lba: int, count: int, gen: int) -> None:
        self.latest[lba:lba + count] = gen
        self.latest_data[lba:lba + count] = gen

    def discarded(self, lba: int, count: int, gen: int) -> None:
        self.latest[lba:lba + count] = gen
        self.last_zero[lba:lba + count] = gen

    def flushed(self) -> None:
        np.copyto(self.floor, self.latest)

    def _settle(self, lba: int, count: int, verdict: np.ndarray, gens: np.ndarray) -> None:
        sl = slice(lba, lba + count)
        stamp = verdict == Verdict.STAMP
        got = np.where(stamp, gens, self.last_zero[sl])
        self.latest[sl] = got
        self.latest_data[sl] = np.where(stamp, gens, np.minimum(self.latest_data[sl], got - 1))
        self.floor[sl] = got

    def check(self, lba: int, data: np.ndarray, unreadable: np.ndarray | None = None,
              settle: bool = False) -> list[Violation]:
        """Violations among the sectors read at lba.. (unreadable: bool per sector).

        settle: the read follows a stop; what the media returned becomes the truth, since
        versions newer than it that were never flushed are gone for good (a later read may
        not bring them back)."""
        count = data.nbytes // 4096
        lbas = np.arange(lba, lba + count, dtype=np.int64)
        verdict, gens = classify(data, lbas)
        sl = slice(lba, lba + count)
        floor, top, zero = self.floor[sl], self.latest_data[sl], self.last_zero[sl]
        bad = np.zeros(count, dtype=np.uint8)                 # 0 ok, else an index into KINDS
        stamp = verdict == Verdict.STAMP
        bad[stamp & (gens < floor)] = 1
        bad[stamp & (gens > top)] = 5
        bad[(verdict == Verdict.ZERO) & (zero < floor)] = 2
        bad[verdict == Verdict.GARBAGE] = 3
        if unreadable is not None:
            bad[unreadable] = 4
        out = []
        for i in np.flatnonzero(bad).tolist():
            kind = ("", "older", "zeros", "garbage", "unreadable", "future")[bad[i]]
            want = f"generation >= {int(floor[i])}" + (" or zeros" if zero[i] >= floor[i] else "")
            got = {Verdict.STAMP: f"generation {int(gens[i])}", Verdict.ZERO: "zeros",
                   Verdict.GARBAGE: "garbage"}[int(verdict[i])] if bad[i] != 4 else "a media error"
            out.append(Violation(lba + i, kind, want, got))
        if settle:
            self._settle(lba, count, verdict, gens)
        return out
