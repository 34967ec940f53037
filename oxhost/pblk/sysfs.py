"""pblk's sysfs files (drivers/lightnvm/pblk-sysfs.c) in Linux's text formats, filled with
this target's values: what `MOUNT/pblk/` serves, so scripts written against
/sys/block/<pblk>/pblk/ carry over.

Every `show_*` function takes the Pblk and returns the file's bytes; PblkSysfs adds what
pblk keeps in memory for its two resettable files (the write-amplification trip and the
padding histogram's reset point) and the stores (write_amp_trip, padding_dist, gc_force).

Where this target differs from the kernel's, the numbers are this target's own:
- the rate limiter counts free space in sectors, not blocks (rl.py), so `rate_limiter`'s
  stop/full/free fields are sectors;
- the writer is synchronous, so nothing is ever in flight: the queue, in-flight and
  flush-point fields are 0 (or NULL), `subm` equals `sync`, and no LUN is ever busy;
- GC cannot be switched off (it is what keeps writes flowing): `gc_enabled` is always 1,
  writing 0 to gc_force changes nothing and writing 1 collects a line at once
  (Pblk.force_gc) instead of only keeping GC awake;
- the error counters persist across restarts (emeta, metadata.COUNTERS) where pblk's start
  at zero; WA counters persist in both, and the trip starts at zero on every open.
"""
import logging

from .errors import PblkError
from .lines import LineState
from .metadata import LINE_EMETA

log = logging.getLogger(__name__)

DIRNAME = "pblk"                 # /sys/block/<dev>/pblk
PAGE_NBYTES = 4096               # a show() fills at most one page (PAGE_SIZE)


def _bitmap_len(nbits: int) -> int:
    """BITS_TO_LONGS(nbits) * sizeof(long)."""
    return -(-nbits // 64) * 8


def _count_order(n: int) -> int:
    """get_count_order: bits to number n things."""
    return max(0, (n - 1).bit_length())


# ---------------------------------------------------------------------- the files
def write_amp(user: int, gc: int, pad: int) -> bytes:
    """pblk_get_write_amp: the counters, then WA to five decimals (NaN before any user write)."""
    text = f"user:{user} gc:{gc} pad:{pad} WA:"
    if not user:
        return (text + "NaN\n").encode()
    whole, frac = divmod((user + gc + pad) * 100000 // user, 100000)
    return f"{text}{whole}.{frac:05d}\n".encode()


def show_write_amp_mileage(p) -> bytes:
    """write_amp_mileage: user/GC/pad sectors written over the volume's life."""
    c = p.c
    return write_amp(c["user"], c["gc"], c["pad"])


def show_write_luns(p) -> bytes:
    """write_luns: the target's LUNs in stripe order, and whether a write holds each (never:
    writes are synchronous)."""
    return "".join(f"pblk: pos:{i}, ch:{ch}, lun:{lun} - 0\n" for i, (ch, lun) in enumerate(p.lg.luns)).encode()


def show_rate_limiter(p) -> bytes:
    """rate_limiter: user and GC entries in the buffer against their maximum, the limiter's
    state, the buffer budget, the high threshold and the free space (sectors)."""
    rl, rb = p.rl, p.rb
    free_user = max(rl.free - rl.rsv, 0)
    return (f"u:{rb.nuser}/{rl.user_max},gc:{rb.ngc}/{rl.gc_max}({int(rl.state)})"
            f"(stop:<{rl.budget},full:>{rl.high},free:{rl.free}/{free_user}/{rl.total})"
            f"-{int(rb.nuser > 0)}\n").encode()


def show_errors(p) -> bytes:
    """errors: read, GC-read, program and erase failures (read_high_ecc: the device's
    high-ECC warning counts as a good read here, so 0)."""
    c = p.c
    return (f"read_failed={c['read_failed']}, read_high_ecc=0, read_empty={c['read_empty']}, "
            f"read_failed_gc={c['read_failed_gc']}, write_failed={c['write_failed']}, "
            f"erase_failed={c['erase_failed']}\n").encode()


def show_gc_state(p) -> bytes:
    """gc_state: GC is always enabled; active while the rate limiter wants it or a victim
    is being collected."""
    active = int(p.rl.gc_active or p.gc.busy)
    return f"gc_enabled=1, gc_active={active}\n".encode()


def target_ppaf(p) -> tuple[int, dict]:
    """pblk_set_addrf_12: the line address format pblk builds (sector, plane, channel, LUN,
    page, block from bit 0 up) and its length in bits. A line's sectors here are numbered
    in that order (lines.py); on a LUN range that is not a power of two per field the bit
    fields are what the format would be, the numbering itself stays dense."""
    lg, f = p.lg, p.dev.geo.ppaf
    chans = sorted({ch for ch, _ in lg.luns})
    per_ch = max(sum(1 for ch, _ in lg.luns if ch == c) for c in chans)
    lens = {"sec": f.sec_len, "pl": f.pl_len, "ch": _count_order(len(chans)),
            "lun": _count_order(per_ch), "pg": f.pg_len, "blk": f.blk_len}
    out, off = {}, 0
    for k in ("sec", "pl", "ch", "lun", "pg", "blk"):
        out[k] = (off, lens[k])
        off += lens[k]
    return off, out


def show_ppa_format(p) -> bytes:
    """ppa_format (OCSSD 1.2): pblk's own line address format, then the device's."""
    nbits, t = target_ppaf(p)
    f = p.dev.geo.ppaf
    d = {"blk": (f.blk_off, f.blk_len), "pg": (f.pg_off, f.pg_len), "lun": (f.lun_off, f.lun_len),
         "ch": (f.ch_off, f.ch_len), "pl": (f.pl_off, f.pl_len), "sec": (f.sec_off, f.sec_len)}

    def fields(x):
        return ",".join(f"{k}:{x[k][0]}/{x[k][1]}" for k in ("blk", "pg", "lun", "ch", "pl", "sec"))
    return f"g:(b:{nbits}){fields(t)}\nd:{fields(d)}\n".encode()


def _gc_group(p, ln, spl: int) -> str:
    """pblk_line_gc_list: the GC list a closed line sits on, by its valid sectors."""
    if ln.werr.any():
        return "werr"
    vsc = int(p.l2p.vsc[ln.id])
    sec_in_line = int(ln.data_units.size) * p.lg.unit_secs
    if vsc <= 0:
        return "full"                   # nothing valid: pblk's "full" (of invalid sectors)
    if vsc < spl // 4:
        return "high"
    if vsc < spl // 2:
        return "mid"
    if vsc < sec_in_line:
        return "low"
    return "empty"                      # every sector valid: nothing for GC to gain


def show_lines(p) -> bytes:
    """lines: the line geometry, the line lists (data line, free, closed, bad), the GC
    lists of closed lines, and the open data line's progress."""
    lg, lm, l2p = p.lg, p.lm, p.l2p
    spl, us = lg.sec_per_line, lg.unit_secs
    groups = dict.fromkeys(("full", "high", "mid", "low", "empty", "werr"), 0)
    closed = bad = 0
    for ln in lm.lines:
        if ln.state == LineState.CLOSED:
            closed += 1
            groups[_gc_group(p, ln, spl)] += 1
        elif ln.state == LineState.BAD:
            bad += 1
    cur = lm.cur
    cur_id = cur.id if cur is not None else -1
    if cur is not None:
        left = cur.units_left() * us
        cur_sec = int(cur.data_units[cur.cur]) * us if left else int(cur.emeta_units[0]) * us
        vsc, s_in_line, mapped, meta = int(l2p.vsc[cur.id]), int(cur.data_units.size) * us, spl - left, 1
    else:
        cur_sec = left = vsc = s_in_line = mapped = meta = 0
    g = groups
    return (f"line: nluns:{lg.nluns}, nblks:{lg.nluns}, nsecs:{spl}\n"
            f"lines:d:{cur_id},l:-1-f:{len(lm.free)},m:0/{meta},c:{closed},b:{bad},co:0"
            f"(d:{closed},l:0)t:{lg.nlines}\n"
            f"GC: full:{g['full']}, high:{g['high']}, mid:{g['mid']}, low:{g['low']}, "
            f"empty:{g['empty']}, werr: {g['werr']}, queue:0\n"
            f"data ({cur_id}) cur:{cur_sec}, left:{left}, vsc:{vsc}, s:{s_in_line}, "
            f"map:{mapped}/{spl} (0)\n").encode()


def show_lines_info(p) -> bytes:
    """lines_info: smeta and emeta sizes, the bitmap lengths, blocks and sectors per line."""
    lg = p.lg
    sz, secb = lg.meta, lg.geo.sector_nbytes
    return (f"smeta - len:{sz.smeta_secs * secb}, secs:{sz.smeta_secs}\n"
            f"emeta - len:{sz.emeta_secs * secb}, sec:{sz.emeta_secs}, bb_start:{LINE_EMETA.itemsize}\n"
            f"bitmap lengths: sec:{_bitmap_len(lg.sec_per_line)}, blk:{_bitmap_len(lg.nluns)}, "
            f"lun:{_bitmap_len(lg.nluns)}\n"
            f"blk_line:{lg.nluns}, sec_line:{lg.sec_per_line}, sec_blk:{lg.sec_per_chunk}\n").encode()


def show_write_buffer(p) -> bytes:
    """write_buffer (pblk_rb_sysfs): entries, the mem/subm/sync/l2p_update ring positions,
    no flush point pending, then entries to write / free / to flush, and queued requests."""
    rb = p.rb
    n = rb.n
    mem, sync = rb.mem % n, rb.sync % n
    return f"{n}\t{mem}\t{sync}\t{sync}\t{sync}\t0\tNULL - {rb.count}/{rb.space}/0 - 0\n".encode()


# ---------------------------------------------------------------------- the directory
_READ_ONLY = 0o444
_FILES = {                      # name: (mode, show) in pblk_attrs order
    "write_luns": (_READ_ONLY, show_write_luns),
    "rate_limiter": (_READ_ONLY, show_rate_limiter),
    "errors": (_READ_ONLY, show_errors),
    "gc_state": (_READ_ONLY, show_gc_state),
    "gc_force": (0o200, None),
    "write_buffer": (_READ_ONLY, show_write_buffer),
    "ppa_format": (_READ_ONLY, show_ppa_format),
    "lines": (_READ_ONLY, show_lines),
    "lines_info": (_READ_ONLY, show_lines_info),
    "write_amp_mileage": (_READ_ONLY, show_write_amp_mileage),
    "write_amp_trip": (0o644, None),
    "padding_dist": (0o644, None),
}


def parse_uint(data: bytes) -> int:
    """kstrtouint(buf, 0): one unsigned number (0x.. hex, 0.. octal), at most one trailing
    newline; PblkError (EINVAL) otherwise."""
    text = bytes(data).decode("ascii", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    t = text[1:] if text.startswith("+") else text
    base = 16 if t[:2].lower() == "0x" else 8 if len(t) > 1 and t[0] == "0" else 10
    digits = t[2:] if base == 16 else t
    try:
        if not digits or not digits.isalnum():
            raise ValueError
        return int(digits, base)
    except ValueError:
        raise PblkError(f"not an unsigned number: {text!r}") from None


class PblkSysfs:
    """The `pblk` directory of one target: its file names and modes (as pblk declares them),
    show() and store(). Owns pblk's in-memory reset points: the write_amp_trip baseline
    (user_rst_wa, gc_rst_wa, pad_rst_wa) and padding_dist's (nr_flush_rst, pad_dist),
    taken when it is built, as pblk takes them when it recovers the counters."""

    name = DIRNAME
    files = tuple(_FILES)

    def __init__(self, pblk):
        self.p = pblk
        self.trip_base = (0, 0, 0)
        self.flush_base = 0
        self.pad_base: dict[int, int] = {}
        self.reset_write_amp_trip()
        self.reset_padding_dist()

    # ------------------------------------------------------------ reset points
    def reset_write_amp_trip(self) -> None:
        """The trip counts from now (pblk_sysfs_set_write_amp_trip)."""
        c = self.p.c
        self.trip_base = (c["user"], c["gc"], c["pad"])

    def reset_padding_dist(self) -> None:
        """The padding histogram counts from now (pblk_sysfs_set_padding_dist)."""
        self.flush_base = self.p.c["flushes"]
        self.pad_base = dict(self.p.rb.pad_dist)

    # ------------------------------------------------------------ the stateful files
    def show_write_amp_trip(self) -> bytes:
        """write_amp_trip: WA of what was written since the last reset (or the open)."""
        c, (u, g, pd) = self.p.c, self.trip_base
        return write_amp(c["user"] - u, c["gc"] - g, c["pad"] - pd)

    def show_padding_dist(self) -> bytes:
        """padding_dist: of the flushes since the reset, the share that padded a write unit
        with 0, 1, .. unit-1 sectors, in whole percent."""
        buckets = self.p.lg.unit_secs - 1
        total = self.p.c["flushes"] - self.flush_base
        if total <= 0:
            return ("".join(f"{i}:0 " for i in range(buckets + 1)) + "\n").encode()
        pads, base = self.p.rb.pad_dist, self.pad_base
        counts = [pads.get(k, 0) - base.get(k, 0) for k in range(1, buckets + 1)]
        parts = [f"0:{max(total - sum(counts), 0) * 100 // total}% "]
        parts += [f"{i + 1}:{n * 100 // total}% " for i, n in enumerate(counts)]
        return ("".join(parts) + "\n").encode()

    # ------------------------------------------------------------ the directory
    def mode(self, name: str) -> int:
        """Permission bits as pblk declares them (0444 read-only, 0644 resettable, 0200 gc_force)."""
        return _FILES[name][0]

    def show(self, name: str) -> bytes:
        """The file's text now (empty for gc_force, as pblk's show gives)."""
        if name == "write_amp_trip":
            return self.show_write_amp_trip()
        if name == "padding_dist":
            return self.show_padding_dist()
        fn = _FILES[name][1]
        return fn(self.p) if fn is not None else b""

    def store(self, name: str, data: bytes) -> None:
        """A write to the file. write_amp_trip and padding_dist take 0 (reset), gc_force 0 or
        1; anything else is PblkError (EINVAL); a read-only file is PblkError too (the FUSE
        edge refuses to open those for writing)."""
        if name not in ("write_amp_trip", "padding_dist", "gc_force"):
            raise PblkError(f"{DIRNAME}/{name} is read-only")
        value = parse_uint(data)
        if name == "gc_force":
            if value > 1:
                raise PblkError(f"gc_force takes 0 or 1, not {value}")
            if value:
                freed0, runs0 = self.p.c["lines_freed"], self.p.c["gc_runs"]
                self.p.force_gc()
                log.info("pblk: forced GC: %d run(s), %d line(s) freed",
                         self.p.c["gc_runs"] - runs0, self.p.c["lines_freed"] - freed0)
            return
        if value != 0:
            raise PblkError(f"{name} takes 0 (reset), not {value}")
        if name == "write_amp_trip":
            self.reset_write_amp_trip()
        else:
            self.reset_padding_dist()

