"""Bus benchmark: vblk line throughput against a plain numpy copy of the same bytes, single-
address read commands per second through the bus, and RSS growth per MiB written.

Ratios are measured in the same run, ours and the baseline interleaved, best of `repeat`,
so a noisy machine moves both sides alike. The baseline copies the same bytes into memory
of the kind VOLT keeps media in (anonymous, 2 MiB aligned, huge pages where the kernel
gives them). Fresh memory is compared with fresh memory (a line no one has written; a copy
into a new mapping) and warm with warm (a line rewritten after its erase; a copy into an
array written before).
"""
import ctypes
import mmap
import time

import numpy as np

from oxemu import Machine
from oxhost.lightnvm import Addr, Device, VBlk, buf_fill

HUGE = 2 << 20


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def anon(nbytes: int) -> np.ndarray:
    """Fresh anonymous memory of the kind VOLT keeps its data in (2 MiB aligned, huge pages
    where the kernel gives them): the numpy baselines copy into it."""
    mm = mmap.mmap(-1, nbytes + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    at = ctypes.c_char.from_buffer(mm)
    shift = -ctypes.addressof(at) % HUGE
    del at
    if hasattr(mmap, "MADV_HUGEPAGE"):
        mm.madvise(mmap.MADV_HUGEPAGE, shift, nbytes)
    return np.frombuffer(mm, np.uint8)[shift:shift + nbytes]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(mib: int = 64, reads: int = 20000, fill_mib: int = 256, repeat: int = 3, echo=print) -> dict:
    """The figures as a dict (MiB/s, commands/s, MiB); prints them with `echo`."""
    out = {"repeat": repeat, "mib": mib}
    nbytes = mib << 20
    rss0 = rss_mib()
    with Machine(lnvm=1, volt=1, ram_mib=max(256, 3 * mib + 64)) as m:
        dev = Device.open(m)
        out["rss_open_mib"] = rss_mib()
        out["rss_before_open_mib"] = rss0
        geo = dev.geo
        src = dev.buf_alloc(nbytes)
        buf_fill(src, 1)
        dst = dev.buf_alloc(nbytes)
        nlines = geo.nblocks
        line_bytes = VBlk.alloc_line(dev, 0, geo.nchannels - 1, 0, geo.nluns - 1, 0).nbytes
        if line_bytes < nbytes:
            raise SystemExit(f"a line holds {line_bytes >> 20} MiB; ask for at most that")
        blk = [0]

        def fresh_line():
            if blk[0] >= nlines:
                raise SystemExit("out of fresh lines: ask for fewer repeats or a smaller fill")
            ln = VBlk.alloc_line(dev, 0, geo.nchannels - 1, 0, geo.nluns - 1, blk[0])
            blk[0] += 1
            return ln

        warm = anon(nbytes)
        warm[:] = 0
        line = fresh_line()
        line.erase()
        line.pwrite(src, 0)
        best = {k: float("inf") for k in ("copy_fresh", "write_fresh", "copy_warm", "write_warm", "read")}
        for _ in range(repeat):                      # ours and the baselines, interleaved
            fresh = None

            def copy_fresh():
                nonlocal fresh
                fresh = anon(nbytes)
                np.copyto(fresh, src)
            best["copy_fresh"] = min(best["copy_fresh"], _timed(copy_fresh))
            del fresh
            ln = fresh_line()
            ln.erase()
            best["write_fresh"] = min(best["write_fresh"], _timed(lambda: ln.pwrite(src, 0)))
            best["copy_warm"] = min(best["copy_warm"], _timed(lambda: np.copyto(warm, src)))
            line.erase()
            best["write_warm"] = min(best["write_warm"], _timed(lambda: line.pwrite(src, 0)))
            best["read"] = min(best["read"], _timed(lambda: line.pread(nbytes, 0, out=dst)))
        assert np.array_equal(dst, src), "read back differs"
        out.update({
            "vblk_write_first_mib_s": mib / best["write_fresh"], "vblk_write_mib_s": mib / best["write_warm"],
            "vblk_read_mib_s": mib / best["read"],
            "numpy_copy_fresh_mib_s": mib / best["copy_fresh"], "numpy_copy_warm_mib_s": mib / best["copy_warm"],
            "ratio_write_first_vs_copy_fresh": best["copy_fresh"] / best["write_fresh"],
            "ratio_write_vs_copy_warm": best["copy_warm"] / best["write_warm"],
            "ratio_read_vs_copy_warm": best["copy_warm"] / best["read"],
        })

        # single-address 4 KiB reads: one command, one doorbell each
        addr = [Addr(0, 0, blk=0, pg=0, sec=0)]
        one = dev.buf_alloc(4096)
        for _ in range(200):
            dev.addr_read(addr, out=one)
        dt = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(reads):
                dev.addr_read(addr, out=one)
            dt = min(dt, time.perf_counter() - t)
        out["read4k_cmds_per_s"] = reads / dt

        # RSS after writing fill_mib more into fresh lines, each line written whole (a line
        # is populated when erased, ahead of its writer)
        dev.buf_free(dst)
        rss_w0 = rss_mib()
        written = 0
        while written < fill_mib << 20 and blk[0] < nlines:
            ln = fresh_line()
            ln.erase()
            k = min(ln.nbytes, (fill_mib << 20) - written)
            for off in range(0, k, nbytes):
                ln.pwrite(src[:min(nbytes, k - off)], off)
            written += k
        out["rss_after_fill_mib"] = rss_mib()
        out["fill_mib"] = written >> 20
        out["rss_growth_per_mib_written"] = (out["rss_after_fill_mib"] - rss_w0) / max(1, written >> 20)
        dev.close()

    echo(f"vblk line ({geo.nchannels * geo.nluns} LUNs) {mib} MiB, best of {repeat}, baselines interleaved:")
    echo(f"  write, fresh media   {out['vblk_write_first_mib_s']:8.0f} MiB/s   numpy copy to fresh memory "
         f"{out['numpy_copy_fresh_mib_s']:8.0f} MiB/s   ratio {out['ratio_write_first_vs_copy_fresh']:.2f}")
    echo(f"  write, rewrite       {out['vblk_write_mib_s']:8.0f} MiB/s   numpy copy to warm memory  "
         f"{out['numpy_copy_warm_mib_s']:8.0f} MiB/s   ratio {out['ratio_write_vs_copy_warm']:.2f}")
    echo(f"  read                 {out['vblk_read_mib_s']:8.0f} MiB/s   numpy copy to warm memory  "
         f"{out['numpy_copy_warm_mib_s']:8.0f} MiB/s   ratio {out['ratio_read_vs_copy_warm']:.2f}")
    echo(f"4 KiB single-address reads: {out['read4k_cmds_per_s']:,.0f} commands/s")
    echo(f"RSS: {out['rss_before_open_mib']:.0f} MiB before open, {out['rss_open_mib']:.0f} MiB after open, "
         f"{out['rss_after_fill_mib']:.0f} MiB after writing {out['fill_mib']} MiB more "
         f"({out['rss_growth_per_mib_written']:.2f} MiB RSS per MiB written)")
    return out


if __name__ == "__main__":
    run()
