"""Replay one round of `ox torture --ext4` in process, from the files the campaign keeps
for a round with a flush violation (run the campaign with --dir DIR --keep):

    .venv/bin/python scripts/replay_ext4_round.py --disk DIR/ext4/violation-pblk-r25.disk \\
        --log DIR/ext4/violation-pblk-r25.log --cut 39 --mode pblk

The same requests reach the device in the same order, the power is cut at the same media
operation, the stack recovers, and every sector is checked against the flush contract
(oxhost.torture.replay). Prints the sectors that break it; exits 1 if any does. Without
FUSE, the kernel or ext4, so it runs under a debugger or a profiler.
"""
import argparse
import sys

from oxhost.torture.replay import replay_round


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--disk", required=True, help="the disk as it was before the round")
    ap.add_argument("--log", required=True, help="the round's write log")
    ap.add_argument("--cut", type=int, required=True, help="media operations after the open")
    ap.add_argument("--mode", required=True, help="the stack mode: pblk, appnvm, or FILE.py:Class@host|device")
    ap.add_argument("--config", default=None, help="the campaign's --config, if it had one")
    ap.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                    help="the campaign's --set overrides (repeatable)")
    a = ap.parse_args(argv)
    config = None
    if a.config or a.sets:
        from oxhost.config import Config
        config = Config.load(a.config, a.sets)
    out = replay_round(a.disk, a.log, a.cut, a.mode, config=config)
    print(f"{out['records']} requests replayed, the first failing at request {out['failed_at']}; "
          f"{len(out['problems'])} sector(s) break the flush contract")
    for p in out["problems"][:50]:
        print("  " + p)
    return 1 if out["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
