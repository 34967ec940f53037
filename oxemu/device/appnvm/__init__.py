"""AppNVM mode (lnvm = 0): the device-side FTL that makes ox-ctrl a plain NVMe disk of
4 KiB LBAs (SPEC 6). `AppNvmFtl` is the ops object the controller drives.

    ftl.py           the ops object: NVM commands, unit programming, write path, read-only, shutdown
    media.py         the door to VOLT: retried reads, programs, erases, timing, bad blocks
    mapping.py       L2P / P2L / valid counts (numpy), the buffer rule, physical sector numbering
    writebuf.py      the volatile write buffer's bytes (one unit) and its modeled depth
    blocks.py        block states, free lists per LUN, erase, bad-block retirement, open blocks
    provisioning.py  exported capacity (pblk's rule by default), GC and metadata reserves
    params.py        the tunables a host-side config hands the device (AppNvmParams)
    gc.py            victim policies and relocation; unreadable sectors stay put
    checkpoint.py    map checkpoints and the trim journal, written to media
    recovery.py      rebuilding the map at start from checkpoint + page OOB
    layout.py        the on-media formats (OOB unit header, checkpoint header, records)
"""
from .ftl import AppNvmFtl
from .params import GC_POLICIES, WEAR_LEVELING, AppNvmParams
from .provisioning import MAX_IO_NBYTES, exported_sectors

__all__ = ["GC_POLICIES", "MAX_IO_NBYTES", "WEAR_LEVELING", "AppNvmFtl", "AppNvmParams", "exported_sectors"]
