"""The flush oracle of `ox torture --ext4`, fed by the volume's block log (oxhost.blocklog).

ext4's own check (journal replay, e2fsck, fsync'd files) says *that* something was lost, not
*where*: a file system bug, a harness mistake or a volume that broke a flush all look the
same from above. So the FUSE daemon of an ext4 round logs what reached the volume -- every
write and zeroing as it arrives, every flush once it succeeded -- and after each cut the
recovered volume is compared sector by sector against the disk contract: a sector reads
back what it held at the last successful flush, or one of the versions written to it since
(acknowledged or not), never anything else. A write that failed is never made durable by a
later flush (the flush covers completed writes only): its versions stay possible, no more.
"""
import hashlib
import os

from ..blocklog import FAILED, FLUSH, REC, WRITE, ZERO

SECTOR = 4096                        # the contract's unit: what a sector may hold

def _digest(sector) -> bytes:
    return hashlib.blake2b(sector, digest_size=8).digest()


class FlushModel:
    """The campaign's side: what each sector may hold, from the log so far.

    Per sector, the digest of what it held at the last flush (`durable`) and the digests of
    every version written to it since (`since`); `cur` is the volume as written, for the
    writes that cover part of a sector. `adopt(actual)` restarts from what the volume holds
    (after a check); a clean stop makes everything written durable."""

    def __init__(self, path: str, size: int):
        """Starts an empty log at path; the volume holds zeros until adopt() says otherwise."""
        self.path = path
        self.pos = 0
        self.records = 0
        with open(path, "wb"):
            pass
        self.adopt(bytes(size))

    def adopt(self, actual: bytes) -> None:
        self.cur = bytearray(actual)
        self.durable = [_digest(self.cur[i:i + SECTOR]) for i in range(0, len(self.cur), SECTOR)]
        self.since: dict[int, set[bytes]] = {}
        self.maybe: dict[int, set[bytes]] = {}       # versions of writes that failed
        self._undo: tuple[int, bytes] | None = None  # the last write's range as it was
        self._adopted = list(self.durable)
        self.nflushes = 0
        self.seen: dict[int, dict[bytes, int]] = {}   # sector -> version -> flushes before it

    def consume(self) -> None:
        """Apply the records appended since the last call."""
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            buf = f.read()
        i = 0
        while i + REC.size <= len(buf):
            op, off, n = REC.unpack_from(buf, i)
            body = n if op == WRITE else 0
            if i + REC.size + body > len(buf):
                break                                   # a record still being appended
            self.records += 1
            if op == FLUSH:
                self._settle()
                self.nflushes += 1
            elif op in (WRITE, ZERO):
                start = i + REC.size
                self._undo = (off, bytes(self.cur[off:off + n]))
                self.cur[off:off + n] = buf[start:start + n] if op == WRITE else bytes(n)
                for sec in range(off // SECTOR, (off + n - 1) // SECTOR + 1):
                    dg = _digest(self.cur[sec * SECTOR:(sec + 1) * SECTOR])
                    self.since.setdefault(sec, set()).add(dg)
                    self.seen.setdefault(sec, {})[dg] = self.nflushes
            elif op == FAILED and self._undo is not None:
                off, old = self._undo
                self._undo = None
                for sec in range(off // SECTOR, (off + len(old) - 1) // SECTOR + 1):
                    self.maybe.setdefault(sec, set()).add(
                        _digest(self.cur[sec * SECTOR:(sec + 1) * SECTOR]))
                self.cur[off:off + len(old)] = old
            i += REC.size + body
        self.pos += i

    def _settle(self) -> None:
        for sec in self.since:
            self.durable[sec] = _digest(self.cur[sec * SECTOR:(sec + 1) * SECTOR])
        self.since = {}

    def stopped_cleanly(self) -> None:
        """A clean stop flushes: everything written is durable."""
        self.consume()
        self._settle()
        self.rotate()

    def rotate(self) -> None:
        """Between mounts (no daemon appending): take in the log and move it to `previous`,
        so it holds one mount's records at most and the last mount's can still be kept."""
        self.consume()
        os.replace(self.path, self.previous)
        with open(self.path, "wb"):
            pass
        self.pos = 0

    @property
    def previous(self) -> str:
        return self.path + ".prev"

    def check(self, actual: bytes) -> list[str]:
        """The sectors of the recovered volume that break the contract, described."""
        self.consume()
        bad = []
        for sec in range(len(actual) // SECTOR):
            got = actual[sec * SECTOR:(sec + 1) * SECTOR]
            dg = _digest(got)
            if dg == self.durable[sec] or dg in self.since.get(sec, ()) or dg in self.maybe.get(sec, ()):
                continue
            if dg in self.seen.get(sec, {}):
                held = (f"an older version (written before flush {self.seen[sec][dg] + 1} "
                        f"of {self.nflushes} since the mount)")
            elif dg == self._adopted[sec]:
                held = "what it held at the mount (older than the last flush)"
            else:
                held = "zeros" if not any(got) else "data never written there"
            bad.append(f"sector {sec} holds {held}, not what the last flush left there"
                       f"{' nor a version written since' if sec in self.since else ''}")
        return bad
