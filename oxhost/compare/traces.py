"""Block traces as `ox compare` workloads: blkparse text, fio iologs and MSR Cambridge CSV
read into one array form, fitted onto a device of another size and replayed with their
issue times or as fast as possible.

Formats (`detect_format` tells them apart from the first line):

blkparse   the default text output of `blkparse -i TRACE`:
           "  8,0    3        1     0.000000000  1234  Q   W 223490 + 8 [fio]"
           (device, CPU, sequence, seconds, pid, action, RWBS, sector + count, [command]).
           Q (queued) events are taken, or D (issued) ones when the trace has no Q; sectors
           are 512 bytes. RWBS: R read, W write, D discard (DE secure erase), a leading F is a
           preflush (a flush is replayed before the request) and F alone / FN a flush; any
           trailing F (FUA), S, M, A, E flags are ignored; N (no data) events are skipped.
           Other actions (G, I, M, P, U, C, A, X, m ...) and the per-CPU summary at the end
           are skipped.
iolog      fio's "fio version 2 iolog" ("FILE ACTION [OFFSET LENGTH]") and "fio version 3
           iolog" ("TIMESTAMP FILE ACTION [OFFSET LENGTH]"). Actions read, write, trim;
           sync / datasync are flushes; add / open / close are skipped. Version 3 timestamps
           are microseconds since the start (what fio 3.33's write_iolog prints:
           utime_since_now); version 2 has none, only `wait` lines whose OFFSET is a delay in
           microseconds after the previous wait (fio's HOWTO), which is how t_ns advances.
msr        SNIA IOTTA's MSR Cambridge CSV ("Timestamp,Hostname,DiskNumber,Type,Offset,Size,
           ResponseTime", the header line optional): timestamps are Windows FILETIME ticks of
           100 ns, Type is Read or Write, Offset and Size are bytes.

One trace must be one device: a blkparse file with events of several devices, an iolog of
several files or an MSR file of several disks is refused unless `device=` picks one
("8,0", the file name, the disk number). Zero-length reads and writes are dropped. Every
malformed line is a `TraceError` naming the file and line number.
"""
from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

__all__ = ["FORMATS", "Request", "Trace", "TraceError", "TraceOp", "detect_format", "format_trace",
           "load_trace", "parse_trace", "write_trace"]

FORMATS = ("blkparse", "iolog", "msr")
SECTOR = 512                            # blktrace sectors
FILETIME_TICK_NS = 100                  # MSR timestamps
MSR_HEADER = "Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime"


class TraceOp(enum.IntEnum):
    """What a trace request does; `.name.lower()` is the op a replay yields."""
    READ = 0
    WRITE = 1
    TRIM = 2
    FLUSH = 3


OP_NAMES = tuple(op.name.lower() for op in TraceOp)


class TraceError(ValueError):
    """A trace cannot be read: a malformed line (named by file and line number), an unknown
    format, or events of more than one device."""

    def __init__(self, message: str, *, source: str = "<trace>", line: int | None = None):
        self.source, self.line = source, line
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {' '.join(message.split())}")


class Request(NamedTuple):
    """One replayed request: issue time in ns (None when as fast as possible), op name
    ("read", "write", "trim", "flush"), byte offset and length (0 for a flush)."""
    t_ns: int | None
    op: str
    offset: int
    nbytes: int


@dataclass(frozen=True, eq=False)
class Trace:
    """A block trace as arrays, one entry per request, in issue order.

    t_ns (int64): issue time relative to the first request; op (uint8): a TraceOp;
    offset, nbytes (int64): bytes. `fmt` and `source` say where it came from.
    """

    t_ns: np.ndarray
    op: np.ndarray
    offset: np.ndarray
    nbytes: np.ndarray
    fmt: str = ""
    source: str = ""

    def __post_init__(self):
        n = len(self.t_ns)
        if not (len(self.op) == len(self.offset) == len(self.nbytes) == n):
            raise ValueError("trace arrays differ in length")

    @classmethod
    def from_records(cls, t_ns, op, offset, nbytes, fmt: str = "", source: str = "") -> Trace:
        """Arrays from sequences; sorted by time (stably) and made relative to the first."""
        t = np.asarray(t_ns, dtype=np.int64)
        order = np.argsort(t, kind="stable")
        t = t[order]
        if t.size:
            t = t - t[0]
        return cls(t, np.asarray(op, dtype=np.uint8)[order], np.asarray(offset, dtype=np.int64)[order],
                   np.asarray(nbytes, dtype=np.int64)[order], fmt, source)

    def __len__(self) -> int:
        return int(self.t_ns.size)

    def __getitem__(self, index) -> Trace:
        """A slice (or boolean / index array) of the requests, as a Trace."""
        if isinstance(index, (int, np.integer)):
            raise TypeError("index a Trace with a slice or an array; use replay() for requests")
        t = self.t_ns[index]
        if t.size:
            t = t - t[0]
        return Trace(t, self.op[index], self.offset[index], self.nbytes[index], self.fmt, self.source)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Trace):
            return NotImplemented
        return all(np.array_equal(getattr(self, k), getattr(other, k)) for k in ("t_ns", "op", "offset", "nbytes"))

    @property
    def duration_ns(self) -> int:
        return int(self.t_ns[-1]) if self.t_ns.size else 0

    def summary(self) -> dict:
        """Counts and bytes per op, duration and the highest byte touched (for reports)."""
        out = dict(requests=len(self), duration_s=self.duration_ns / 1e9,
                   max_offset_end=int((self.offset + self.nbytes).max()) if len(self) else 0)
        for op, plural in zip(TraceOp, ("reads", "writes", "trims", "flushes"), strict=True):
            sel = self.op == op
            out[plural] = int(np.count_nonzero(sel))
            if op is not TraceOp.FLUSH:
                out[f"{op.name.lower()}_bytes"] = int(self.nbytes[sel].sum())
        return out

    def fit(self, device_bytes: int, align: int = 4096) -> Trace:
        """The trace mapped onto a device of `device_bytes`: each request widened to whole
        `align` blocks (offset rounded down, end rounded up), its offset folded modulo the
        device size, and moved back just enough to end inside the device (a request longer
        than the device is cut to it). Flushes stay (0, 0)."""
        dev = device_bytes - device_bytes % align
        if dev <= 0:
            raise ValueError(f"device of {device_bytes} bytes holds no {align}-byte block")
        start = self.offset - self.offset % align
        end = -(-(self.offset + self.nbytes) // align) * align
        n = np.minimum(end - start, dev)
        start = np.minimum(start % dev, dev - n)
        flush = self.op == TraceOp.FLUSH
        return Trace(self.t_ns.copy(), self.op.copy(), np.where(flush, 0, start), np.where(flush, 0, n),
                     self.fmt, self.source)

    def replay(self, mode: str = "timed", speed: float = 1.0) -> Iterator[Request]:
        """Requests in order. mode "timed": each with its issue time (t_ns / speed, so
        speed=2 replays twice as fast); the runner issues it once its clock reaches that
        time (or at once if it is late). mode "afap": as fast as possible, t_ns None."""
        if mode not in ("timed", "afap"):
            raise ValueError(f"replay mode {mode!r} is not timed or afap")
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, got {speed!r}")
        ops, offs, lens = self.op.tolist(), self.offset.tolist(), self.nbytes.tolist()
        if mode == "afap":
            for i in range(len(ops)):
                yield Request(None, OP_NAMES[ops[i]], offs[i], lens[i])
            return
        ts = (self.t_ns if speed == 1.0 else (self.t_ns / speed).astype(np.int64)).tolist()
        for i in range(len(ops)):
            yield Request(ts[i], OP_NAMES[ops[i]], offs[i], lens[i])


# ---------------------------------------------------------------- detection and loading

_BLK_EVENT = re.compile(r"^\s*(\d+),(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\.(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s*(.*)$")
_BLK_SUMMARY = re.compile(r"^(CPU\d+|Total) \(")
_MSR_ROW = re.compile(r"^\s*\d+,[^,]*,\d+,(read|write),\d+,\d+,\d+\s*$", re.IGNORECASE)
_IOLOG = re.compile(r"^fio version (\d+) iolog\s*$")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _read_text(path, limit: int | None = None) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read() if limit is None else f.read(limit)
    except OSError as e:
        raise TraceError(f"cannot read it ({e.strerror or e})", source=str(path)) from None


def detect_format(path_or_text) -> str:
    """"blkparse", "iolog" or "msr" from the first non-empty line of a file (a Path, or a
    str naming an existing file) or of a text; TraceError when it is none of them."""
    if isinstance(path_or_text, Path) or ("\n" not in path_or_text and os.path.isfile(path_or_text)):
        return _detect(_read_text(path_or_text, 1 << 16), str(path_or_text))
    return _detect(path_or_text, "<text>")


def _detect(text: str, source: str) -> str:
    first = _first_line(text)
    m = _IOLOG.match(first)
    if m:
        if m.group(1) not in ("2", "3"):
            raise TraceError(f"fio iolog version {m.group(1)} is not supported (2 and 3 are)", source=source)
        return "iolog"
    if first.replace(" ", "").lower() == MSR_HEADER.lower() or _MSR_ROW.match(first):
        return "msr"
    if _BLK_EVENT.match(first):
        return "blkparse"
    shown = first if len(first) <= 60 else first[:57] + "..."
    raise TraceError(f"cannot tell the trace format (blkparse, iolog or msr) from {shown!r}", source=source)


def load_trace(path, fmt: str | None = None, *, device: str | None = None) -> Trace:
    """The trace in the file at `path` (format detected unless given)."""
    text = _read_text(path)
    return parse_trace(text, fmt or _detect(text, str(path)), source=str(path), device=device)


def parse_trace(text: str, fmt: str | None = None, *, source: str = "<text>", device: str | None = None) -> Trace:
    """The trace in `text`; see the module docstring for the formats and `device`."""
    fmt = fmt or _detect(text, source)
    if fmt not in FORMATS:
        raise ValueError(f"trace format {fmt!r} is not one of {', '.join(FORMATS)}")
    return {"blkparse": _parse_blkparse, "iolog": _parse_iolog, "msr": _parse_msr}[fmt](text, source, device)


class _Bad(ValueError):
    """A parser's own description of what is wrong with a line."""


class _Records:
    """Requests collected by a parser, with the device (stream) each came from."""

    def __init__(self, source: str, device: str | None, what: str):
        self.source, self.device, self.what = source, device, what
        self.t, self.op, self.off, self.n = [], [], [], []
        self.devices: dict[str, int] = {}       # device -> first line

    def add(self, dev: str, line: int, t: int, op: TraceOp, off: int, n: int) -> None:
        if self.device is not None and dev != self.device:
            return
        self.devices.setdefault(dev, line)
        if op is not TraceOp.FLUSH and n == 0:
            return
        self.t.append(t)
        self.op.append(op)
        self.off.append(off)
        self.n.append(n)

    def trace(self, fmt: str) -> Trace:
        if len(self.devices) > 1:
            names = sorted(self.devices, key=self.devices.get)
            raise TraceError(f"events of {len(names)} {self.what}s ({', '.join(names[:4])}"
                             f"{', ...' if len(names) > 4 else ''}); pick one with device=",
                             source=self.source, line=self.devices[names[1]])
        return Trace.from_records(self.t, self.op, self.off, self.n, fmt, self.source)


def _rwbs(rwbs: str) -> tuple[bool, TraceOp | None]:
    """(preflush, op) of a blktrace RWBS string; op None for no-data events."""
    preflush = rwbs.startswith("F")
    s = rwbs[1:] if preflush else rwbs
    kind = s[:1]
    if kind == "R":
        return preflush, TraceOp.READ
    if kind == "W":
        return preflush, TraceOp.WRITE
    if kind == "D":
        return preflush, TraceOp.TRIM
    if kind in ("", "F", "N"):
        return False, TraceOp.FLUSH if (preflush or kind == "F") else None
    raise ValueError(f"unknown RWBS {rwbs!r}")


def _parse_blkparse(text: str, source: str, device: str | None) -> Trace:
    picked = {"Q": _Records(source, device, "device"), "D": _Records(source, device, "device")}
    summary = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if summary or not line.strip():
            continue
        m = _BLK_EVENT.match(line)
        if m is None:
            if _BLK_SUMMARY.match(line):
                summary = True
                continue
            raise TraceError(f"not a blkparse event line: {line.strip()[:60]!r}", source=source, line=lineno)
        maj, mnr, _cpu, _seq, sec, frac, _pid, action, rwbs, rest = m.groups()
        if action not in picked:
            continue
        try:
            preflush, op = _rwbs(rwbs)
        except ValueError as e:
            raise TraceError(str(e), source=source, line=lineno) from None
        if op is None:
            continue
        t = int(sec) * 1_000_000_000 + int(frac[:9].ljust(9, "0"))
        dev = f"{maj},{mnr}"
        rec = picked[action]
        sm = re.match(r"^(\d+)\s*\+\s*(\d+)(?:\s|$)", rest)
        if sm is None:
            if (preflush or op is TraceOp.FLUSH) and (not rest or rest.startswith("[")):
                op = TraceOp.FLUSH              # an empty preflush ("FWS [jbd2]") is a flush
                rec.add(dev, lineno, t, op, 0, 0)
                continue
            raise TraceError(f"expected 'SECTOR + COUNT' after {action} {rwbs}, got {rest[:40]!r}",
                             source=source, line=lineno)
        off, n = int(sm.group(1)) * SECTOR, int(sm.group(2)) * SECTOR
        if preflush:
            rec.add(dev, lineno, t, TraceOp.FLUSH, 0, 0)
        rec.add(dev, lineno, t, op, off if op is not TraceOp.FLUSH else 0, n if op is not TraceOp.FLUSH else 0)
    rec = picked["Q"] if picked["Q"].t else picked["D"]
    return rec.trace("blkparse")


_IOLOG_OPS = {"read": TraceOp.READ, "write": TraceOp.WRITE, "trim": TraceOp.TRIM, "sync": TraceOp.FLUSH,
              "datasync": TraceOp.FLUSH}


def _parse_iolog(text: str, source: str, device: str | None) -> Trace:
    lines = text.splitlines()
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    m = _IOLOG.match(lines[first].strip()) if first is not None else None
    if m is None or m.group(1) not in ("2", "3"):
        raise TraceError("not a fio version 2 or 3 iolog (first line)", source=source,
                         line=None if first is None else first + 1)
    v3 = m.group(1) == "3"
    rec = _Records(source, device, "file")
    t_us = 0
    for lineno in range(first + 2, len(lines) + 1):
        f = lines[lineno - 1].split()
        if not f:
            continue
        try:
            if v3:
                t_us = int(f[0])
                f = f[1:]
            if len(f) == 2 and f[1] in ("add", "open", "close"):
                continue
            if len(f) != 4:
                raise _Bad("wrong number of fields")
            fname, action, off, n = f[0], f[1], int(f[2]), int(f[3])
            if off < 0 or n < 0:
                raise _Bad("negative offset or length")
        except ValueError as e:
            why = str(e) if isinstance(e, _Bad) else "not a number where one is expected"
            raise TraceError(f"{why}; expected '{'TIMESTAMP ' if v3 else ''}FILE ACTION [OFFSET LENGTH]', "
                             f"got {lines[lineno - 1].strip()[:60]!r}", source=source, line=lineno) from None
        if action == "wait":
            if not v3:                      # fio 3 ignores wait in version 3 logs too
                t_us += off
            continue
        op = _IOLOG_OPS.get(action)
        if op is None:
            raise TraceError(f"unknown iolog action {action!r}", source=source, line=lineno)
        if op is TraceOp.FLUSH:
            off = n = 0
        rec.add(fname, lineno, t_us * 1000, op, off, n)
    return rec.trace("iolog")


def _parse_msr(text: str, source: str, device: str | None) -> Trace:
    rec = _Records(source, device, "disk")
    ts0 = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or (lineno == 1 and s.replace(" ", "").lower() == MSR_HEADER.lower()):
            continue
        f = s.split(",")
        try:
            if len(f) != 7:
                raise _Bad(f"expected 7 fields ({MSR_HEADER}), got {len(f)}")
            ts, disk, kind, off, n = int(f[0]), f[2].strip(), f[3].strip().lower(), int(f[4]), int(f[5])
            if kind not in ("read", "write"):
                raise _Bad(f"Type {f[3].strip()!r} is not Read or Write")
            if off < 0 or n < 0:
                raise _Bad("negative offset or size")
        except ValueError as e:
            why = str(e) if isinstance(e, _Bad) else "Timestamp, Offset and Size must be integers"
            raise TraceError(f"{why}: {s[:60]!r}", source=source, line=lineno) from None
        if ts0 is None:
            ts0 = ts                            # FILETIME x 100 ns overflows int64: rebase first
        rec.add(disk, lineno, (ts - ts0) * FILETIME_TICK_NS, TraceOp.READ if kind == "read" else TraceOp.WRITE,
                off, n)
    return rec.trace("msr")


# ---------------------------------------------------------------- writing

def format_trace(trace: Trace, fmt: str, *, version: int = 3, device: str = "/dev/ox") -> str:
    """The trace as text in `fmt` (what `parse_trace` reads back). blkparse writes Q, D and
    C events and a summary (offsets and lengths must be multiples of 512); iolog writes
    `version` 3 (timestamps in us) or 2 (no timing); msr cannot hold trims or flushes and
    leaves them out, and writes no header line, like the published files."""
    ops, offs, lens, ts = trace.op.tolist(), trace.offset.tolist(), trace.nbytes.tolist(), trace.t_ns.tolist()
    out: list[str] = []
    if fmt == "iolog":
        if version not in (2, 3):
            raise ValueError("iolog version must be 2 or 3")
        stamp = (lambda t: f"{t // 1000} ") if version == 3 else (lambda t: "")
        out += [f"fio version {version} iolog", f"{stamp(0)}{device} add", f"{stamp(0)}{device} open"]
        for t, op, off, n in zip(ts, ops, offs, lens, strict=True):
            out.append(f"{stamp(t)}{device} {('read', 'write', 'trim', 'sync')[op]} {off} {n}")
        out.append(f"{stamp(ts[-1] if ts else 0)}{device} close")
    elif fmt == "msr":
        base = 128166372000000000                   # 2007-02-22, when the MSR traces begin
        for t, op, off, n in zip(ts, ops, offs, lens, strict=True):
            if op in (TraceOp.READ, TraceOp.WRITE):
                kind = "Read" if op == TraceOp.READ else "Write"
                out.append(f"{base + t // FILETIME_TICK_NS},ox,0,{kind},{off},{n},{1000 + n // 100}")
    elif fmt == "blkparse":
        out = _format_blkparse(ts, ops, offs, lens)
    else:
        raise ValueError(f"trace format {fmt!r} is not one of {', '.join(FORMATS)}")
    return "\n".join(out) + "\n"


def _format_blkparse(ts, ops, offs, lens) -> list[str]:
    events = []
    for i, (t, op, off, n) in enumerate(zip(ts, ops, offs, lens, strict=True)):
        if off % SECTOR or n % SECTOR:
            raise ValueError(f"request {i}: offset {off} / length {n} are not multiples of {SECTOR}")
        rwbs = ("R", "WS", "D", "FWS")[op]
        data = "" if op == TraceOp.FLUSH else f"{off // SECTOR} + {n // SECTOR} "
        events += [(t, 0, i, "Q", rwbs, data + "[fio]"), (t + 1500, 1, i, "D", rwbs, data + "[fio]"),
                   (t + 1500 + 60_000 + n // 16, 2, i, "C", rwbs, data + "[0]")]
    events.sort()
    seq = [0, 0]
    out = []
    for t, _, i, action, rwbs, rest in events:
        cpu = i % 2
        seq[cpu] += 1
        pid = 0 if action == "C" else 4242
        out.append(f"  8,0   {cpu:2d} {seq[cpu]:8d} {t // 10**9:5d}.{t % 10**9:09d} {pid:5d}  {action} "
                   f"{rwbs:>3} {rest}")
    nq = {op: sum(1 for o in ops if o == op) for op in TraceOp}
    out += ["CPU0 (8,0):",
            f" Reads Queued:    {nq[TraceOp.READ]:8,d}, Writes Queued:    {nq[TraceOp.WRITE]:8,d}",
            "Total (8,0):",
            f" Reads Queued:    {nq[TraceOp.READ]:8,d}, Writes Queued:    {nq[TraceOp.WRITE]:8,d}",
            "", f"Events (8,0): {len(events):,d} entries", "Skips: 0 forward (0 -   0.0%)"]
    return out


def write_trace(trace: Trace, path, fmt: str, **kw) -> None:
    """format_trace into a file."""
    Path(path).write_text(format_trace(trace, fmt, **kw))
