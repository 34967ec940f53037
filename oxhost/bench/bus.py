"""Foundation benchmark (issue 3): vblk line throughput against a plain numpy copy of the
same bytes, single-address read commands per second through the bus, and RSS growth.

Ratios are measured in the same run, so a noisy machine moves both sides alike.
"""
import time

import numpy as np

from oxemu import Machine
from oxhost.lightnvm import Addr, Device, VBlk, buf_fill


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _best(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(mib: int = 64, reads: int = 20000, fill_mib: int = 256, echo=print) -> dict:
    out = {}
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
        line = VBlk.alloc_line(dev, 0, geo.nchannels - 1, 0, geo.nluns - 1, 0)
        if line.nbytes < nbytes:
            raise SystemExit(f"a line holds {line.nbytes >> 20} MiB; ask for at most that")

        # numpy baselines on the same bytes: into fresh memory (like first-touch media)
        # and into warm memory (like rewritten media)
        t = time.perf_counter()
        fresh = np.empty_like(src)
        np.copyto(fresh, src)
        copy_cold = time.perf_counter() - t
        warm = np.empty_like(src)
        warm[:] = 0
        copy_warm = _best(lambda: np.copyto(warm, src), 3)
        del fresh

        line.erase()
        t = time.perf_counter()
        line.pwrite(src[:nbytes], 0)
        w_cold = time.perf_counter() - t

        def rewrite():
            line.erase()
            t0 = time.perf_counter()
            line.pwrite(src[:nbytes], 0)
            return time.perf_counter() - t0
        w_warm = min(rewrite() for _ in range(3))
        r = _best(lambda: line.pread(nbytes, 0, out=dst), 3)
        assert np.array_equal(dst, src), "read back differs"
        out.update({
            "vblk_write_first_mib_s": mib / w_cold, "vblk_write_mib_s": mib / w_warm,
            "vblk_read_mib_s": mib / r,
            "numpy_copy_fresh_mib_s": mib / copy_cold, "numpy_copy_warm_mib_s": mib / copy_warm,
            "ratio_write_first_vs_copy_fresh": copy_cold / w_cold,
            "ratio_write_vs_copy_warm": copy_warm / w_warm,
            "ratio_read_vs_copy_warm": copy_warm / r,
        })

        # single-address 4 KiB reads: one command, one doorbell each
        addr = [Addr(0, 0, blk=0, pg=0, sec=0)]
        one = dev.buf_alloc(4096)
        for _ in range(200):
            dev.addr_read(addr, out=one)
        t = time.perf_counter()
        for _ in range(reads):
            dev.addr_read(addr, out=one)
        out["read4k_cmds_per_s"] = reads / (time.perf_counter() - t)

        # RSS after writing fill_mib more into the media
        dev.buf_free(dst)
        rss_w0 = rss_mib()
        written = 0
        blk = 1
        while written < fill_mib << 20 and blk < geo.nblocks:
            ln = VBlk.alloc_line(dev, 0, geo.nchannels - 1, 0, geo.nluns - 1, blk)
            ln.erase()
            k = min(ln.nbytes, (fill_mib << 20) - written, nbytes)
            for off in range(0, k, nbytes):
                ln.pwrite(src[:min(nbytes, k - off)], off)
            written += k
            blk += 1
        out["rss_after_fill_mib"] = rss_mib()
        out["fill_mib"] = written >> 20
        out["rss_growth_per_mib_written"] = (out["rss_after_fill_mib"] - rss_w0) / max(1, written >> 20)
        dev.close()

    echo(f"vblk line ({geo.nchannels * geo.nluns} LUNs) {mib} MiB:")
    echo(f"  write, first touch   {out['vblk_write_first_mib_s']:8.0f} MiB/s   numpy copy to fresh memory "
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
