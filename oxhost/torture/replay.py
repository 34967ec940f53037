"""An ext4 round of `ox torture --ext4` replayed in process, from its write log.

The FUSE daemon serves requests one at a time, and its log holds every one of them that
reaches the device (reads and background slices too), so replaying the log against a copy
of the disk as it was before the round runs the same media operations in the same order:
the power cut lands where it landed, and a flush violation found by the campaign shows
again here, under a debugger, without FUSE, the kernel or ext4.

    python scripts/replay_ext4_round.py --disk DIR/ext4/violation-pblk-r25.disk \\
        --log DIR/ext4/violation-pblk-r25.log --cut 39 --mode pblk

(the campaign keeps those two files for every round with a flush violation and prints the
command; run it with --dir DIR --keep so they outlive it).
"""
import os
import shutil
import tempfile

import numpy as np

from oxemu import Faults, Geometry

from ..blocklog import BACKGROUND, FAILED, FLUSH, READ, REC, WRITE, ZERO, BlockLog
from .flushmodel import FlushModel


def replay_round(disk: str, log: str, cut: int, mode: str, geometry: Geometry | None = None,
                 config=None) -> dict:
    """Run the log's requests on a copy of `disk` with the power cut `cut` media operations
    after the open, recover, and check every sector against the flush contract. Returns
    {records, failed_at, problems}; `disk` itself is not changed."""
    from ..stack import open_stack
    work = tempfile.mkdtemp(prefix="ox-replay-")
    try:
        copy = os.path.join(work, "replay.disk")
        shutil.copyfile(disk, copy)
        st = open_stack(mode=mode, disk=copy, geometry=geometry, config=config)
        try:
            image = st.blockdev.read(0, st.blockdev.size).tobytes()
        finally:
            st.close()
        shutil.copyfile(disk, copy)                    # the reads must not count: start over
        model_log = os.path.join(work, "model.log")
        model = FlushModel(model_log, 0)
        model.adopt(image)
        out = BlockLog(model_log)
        faults = Faults()
        st = open_stack(mode=mode, disk=copy, geometry=geometry, config=config, faults=faults)
        faults.power_cut_after = st.machine.stats()["media_ops"] + cut
        bd = st.blockdev
        with open(log, "rb") as f:
            buf = f.read()
        i = records = 0
        failed_at = None
        while i + REC.size <= len(buf):
            op, off, n = REC.unpack_from(buf, i)
            body = buf[i + REC.size:i + REC.size + n] if op == WRITE else b""
            i += REC.size + len(body)
            if op == FAILED:
                continue                                # the replay finds its own failures
            records += 1
            try:
                if op == WRITE:
                    out.write(off, body)
                    bd.write(off, np.frombuffer(body, np.uint8))
                elif op == ZERO:
                    out.zero(off, n)
                    bd.write_zeroes(off, n)
                elif op == FLUSH:
                    bd.flush()
                    out.flush()
                elif op == READ:
                    bd.read(off, n)
                elif op == BACKGROUND:
                    bd.background()
            except Exception:                          # noqa: BLE001 - a failure is an outcome
                if op in (WRITE, ZERO):
                    out.failed()
                if failed_at is None:
                    failed_at = records
        out.close()
        st.abandon()                                   # the plug is pulled
        st = open_stack(mode=mode, disk=copy, geometry=geometry, config=config)
        try:
            got = st.blockdev.read(0, st.blockdev.size).tobytes()
        finally:
            st.close()
        return dict(records=records, failed_at=failed_at, problems=model.check(got))
    finally:
        shutil.rmtree(work, ignore_errors=True)
