"""Write amplification of an ext4 workload on `ox up`, with and without fstrim, both FTLs.

The file system holds 80 % live data in files of 1/64 of its size; each round deletes half
of them at random (then runs `fstrim` when asked) and writes new ones until 80 % is used
again; the FTL's write amplification is read from MOUNT/stats after every round. ext4
spreads new files over all its free blocks, so without TRIM every block it ever wrote
stays mapped in the FTL and GC copies deleted files; with it, they are free at once.

    sudo .venv/bin/python scripts/trim_wa.py [--geometry 4x4x16x64] [--rounds 8]

Needs root (loop mounts), /dev/fuse and e2fsprogs. Prints one table; takes a few minutes.
"""
import argparse
import random
import json
import os
import subprocess
import sys
import tempfile

from oxhost import tools

OX = [sys.executable, "-m", "oxhost.cli"]
NFILES = 64
LIVE = 0.8


def _run(*cmd, env=None) -> str:
    cp = subprocess.run(tools.command(cmd), capture_output=True, text=True, env=env, check=False)
    if cp.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))}: {cp.stderr.strip() or cp.stdout.strip()}")
    return cp.stdout


def _stats(state_dir: str) -> dict:
    fuse = [d for d in os.listdir(state_dir) if d.startswith("up-")][0]
    with open(os.path.join(state_dir, fuse, "stats")) as f:
        return json.load(f)


def _wa(st: dict) -> tuple[float, int, int]:
    """(media WA over the round, user sectors, gc sectors) from cumulative counters."""
    return st["media_write_amplification"], st["user_sectors"], st["gc_sectors"]


def measure(mode: str, trim: bool, geometry: str, rounds: int, base: str) -> tuple[list, dict]:
    """WA per round, and the last stats."""
    env = dict(os.environ, OX_STATE_DIR=os.path.join(base, f"state-{mode}-{trim}"))
    up = os.path.join(base, f"up-{mode}-{trim}")
    disk = os.path.join(base, f"{mode}-{trim}.disk")
    _run(*OX, "up", up, "--disk", disk, "--mode", mode, "--geometry", geometry, env=env)
    rng = random.Random(0)
    out = []
    try:
        st = os.statvfs(up)
        fsbytes = st.f_blocks * st.f_frsize
        size = fsbytes // NFILES // 4096 * 4096
        live: list[str] = []
        serial = 0
        prev = _wa(_stats(env["OX_STATE_DIR"]))
        for r in range(rounds):
            # delete half of the live files, then create files until LIVE of the fs is used
            for name in rng.sample(live, len(live) // 2):
                os.unlink(os.path.join(up, name))
                live.remove(name)
            os.sync()
            if trim:
                _run("fstrim", up)
            while len(live) * size < LIVE * fsbytes:
                name = f"f{serial}"
                serial += 1
                with open(os.path.join(up, name), "wb") as f:
                    f.write(os.urandom(size))
                live.append(name)
            os.sync()
            cur = _wa(_stats(env["OX_STATE_DIR"]))
            du, dg = cur[1] - prev[1], cur[2] - prev[2]
            out.append(round((du + dg) / du, 3) if du else 0.0)
            prev = cur
        last = _stats(env["OX_STATE_DIR"])
    finally:
        _run(*OX, "umount", up, env=env)
    return out, last


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--geometry", default="4x4x16x64")
    ap.add_argument("--rounds", type=int, default=12)
    a = ap.parse_args(argv)
    base = tempfile.mkdtemp(prefix="ox-trim-wa-")
    print(f"geometry {a.geometry}; ext4 80 % full, each round replaces half of its files")
    print("WA per round = (user + GC sectors) / user sectors written in that round")
    for mode in ("pblk", "appnvm"):
        for trim in (False, True):
            series, last = measure(mode, trim, a.geometry, a.rounds, base)
            steady = series[len(series) // 2:]
            cap = last.get("capacity_sectors") or last["size"] // 4096
            print(f"{mode:6s} {'fstrim' if trim else 'no trim':8s} steady WA "
                  f"{sum(steady) / len(steady):.2f}  valid at the end {last['valid_sectors'] / cap:.0%} "
                  f"of the volume  per round {series}", flush=True)


if __name__ == "__main__":
    main()
