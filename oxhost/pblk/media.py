"""Reading the media with one error policy for user reads, GC and recovery (SPEC 9).

Statuses come per address from the device up. An uncorrectable ECC error can be transient,
so failed addresses are read again, alone of the rest, a few times (AppNVM's device-side
FTL retries 4 times as well); what still fails after that is reported per address to the
caller, which decides: a user read raises PblkIOError for those sectors and serves the
others, GC leaves the sector mapped where it is, recovery treats the page as consumed.
An empty page (0x42FF) is definitive and not retried.
"""
import numpy as np

from oxemu.wire import NvmOpc, PMode, Status
from oxhost.lightnvm import NvmError

READ_RETRIES = 4

EMPTY = int(Status.NVM_EMPTY_PAGE)


def read(dev, ppas: np.ndarray, out: np.ndarray, counters: dict, with_meta: bool = False,
         retries: int = READ_RETRIES):
    """Read sectors into out (n * sector bytes). Returns (meta or None, statuses or None):
    statuses is a uint16 per address after the retries (0: read fine), None when all were."""
    try:
        _, meta = dev.ppa_io(NvmOpc.PH_READ, ppas, PMode.SNGL, out=out, with_meta=with_meta)
        return meta, None
    except NvmError as e:
        st = e.statuses.astype(np.uint16, copy=True)
        meta = e.meta
    secb = dev.geo.sector_nbytes
    sos = dev.geo.meta_nbytes
    rows = out.reshape(-1)[:ppas.size * secb].reshape(ppas.size, secb)
    mrows = meta.reshape(ppas.size, sos) if meta is not None else None
    for _ in range(retries):
        idx = np.flatnonzero((st != 0) & (st != EMPTY))
        if idx.size == 0:
            break
        counters["read_retries"] += int(idx.size)
        tmp = np.empty(idx.size * secb, dtype=np.uint8)
        try:
            _, m2 = dev.ppa_io(NvmOpc.PH_READ, ppas[idx], PMode.SNGL, out=tmp, with_meta=with_meta)
            st2 = np.zeros(idx.size, dtype=np.uint16)
        except NvmError as e:
            st2, m2 = e.statuses, e.meta
        ok = st2 == 0
        if ok.any():
            rows[idx[ok]] = tmp.reshape(idx.size, secb)[ok]
            if mrows is not None and m2 is not None:
                mrows[idx[ok]] = m2.reshape(idx.size, sos)[ok]
        st[idx] = st2
    return meta, (st if st.any() else None)
