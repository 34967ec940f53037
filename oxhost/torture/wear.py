"""How worn a volume under torture is, in blocks: how many have grown bad, and how many
more the FTL can lose before it goes read-only -- so a campaign can spend its permanent
media faults (program and erase failures, which retire blocks) without wearing the
device out, and count the blocks its faults cost.

What "spare" means differs by FTL:

* pblk turns read-only once its spare data sectors (every usable line's data sectors
  beyond the exported capacity, less what lines GC cannot empty still hold) fall below
  what GC needs -- its reserve line and half a line more (Pblk._update_read_only). A lost
  block takes one chunk of data sectors from its line, so the spare blocks are
  (spare sectors - need) // sectors per chunk.
* AppNVM turns read-only once the blocks that stay good (not retired, nor sealed to be
  retired after a program failure) are fewer than `min_good`: the capacity's blocks plus
  GC's and the metadata's reserves (provisioning.py). Its spare blocks are the difference.

Grown-bad blocks are read from the media's bad block tables (get bad block table, 0xF2)
for pblk, and from the device's FTL log page (0xC1) for AppNVM, which also counts the
blocks sealed to be retired; `min_good` comes from the machine's lab instruments.

* A plug-in FTL (the FTL API) says it itself: `Ftl.spare_blocks()`; grown-bad blocks
  come from the machine's lab instrument.
"""
from dataclasses import dataclass

import numpy as np

from oxemu.wire import BlockState


@dataclass(frozen=True)
class Wear:
    grown_bad: int          # blocks grown bad (retired, or sealed to be)
    spare: int              # blocks the FTL can still lose before it goes read-only


def wear(stack) -> Wear:
    """The wear of the volume an open stack serves."""
    if stack.mode == "pblk":
        return _pblk(stack)
    if stack.mode == "appnvm":
        return _appnvm(stack)
    return _plugin(stack)


def _plugin(stack) -> Wear:
    """A plug-in FTL says how many blocks it can still lose (Ftl.spare_blocks; 0 when it
    cannot say: then no permanent faults are spent on it); the media's table says how
    many grew bad."""
    grown = int(stack.machine.grown_bad_blocks().sum())
    side = stack.blockdev.stats() if stack.mode.rpartition("@")[2].startswith("host") else \
        stack.machine.stats().get("ftl", {})
    return Wear(grown, max(0, int(side.get("spare_blocks") or 0)))


def _pblk(stack) -> Wear:
    from ..lightnvm import Addr
    p = stack.blockdev
    dev = stack.device
    grown = 0
    for ch, lun in p.lg.luns:
        t = dev.bbt_get(Addr(ch, lun))
        planes = t.blks.reshape(-1, t.nplanes)
        grown += int(np.count_nonzero((planes == BlockState.GRWN_BAD).any(axis=1)))
    reserve = p.lm.reserve_secs
    need = reserve + reserve // 2
    spare = (int(p.stats()["spare_sectors"]) - need) // p.lg.sec_per_chunk
    return Wear(grown, max(0, spare))


def _appnvm(stack) -> Wear:
    f = stack.blockdev.ftl()
    lasting = f["total_blocks"] - f["bad_blocks"]["factory"] - f["bad_blocks"]["grown"]
    min_good = int(stack.machine.stats()["ftl"]["min_good_blocks"])
    return Wear(int(f["bad_blocks"]["grown"]), max(0, lasting - min_good))


def fault_budget(spare: int) -> int:
    """Permanent faults a campaign may inject in all: about half the spare blocks, so the
    device stays writable to the end with room to spare."""
    return (spare + 1) // 2


def allowance(budget: int, rounds: int, r: int) -> int:
    """Permanent faults allowed by the end of round r (0-based) of `rounds`: the budget
    spread evenly, the last of it in the last round."""
    return budget * min(r + 1, rounds) // max(1, rounds)
