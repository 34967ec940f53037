"""Runs of open-channel commands executed at once (the LNVM FTL's fast path, SPEC 5, 6).

A host that rings one doorbell for many commands (pblk's 16 x 64 sectors, a vblk line)
hands the device a run of writes or reads. Executed one by one, each would pay for its own
SQE decode, PPA list walk, PRP list walk, NAND checks and VOLT call. Here the run's SQEs
are records, its PPA and PRP lists are gathered from guest RAM in one indexing each, the
NAND rules are checked on the raw PPAs of all its pages at once, and VOLT programs or
reads them in one call -- the data moved in a single copy when the commands' buffers
follow each other in guest RAM.

Exactness is the contract: the statuses, failed-address bitmaps, completion times (each
command charged to the timing model as `_write`/`_read` charge it, in order), media state,
counters and DMA byte counts are those of the same commands one by one. A run is taken
only when that is provable up front -- every command well formed (whole pages in order
for writes), every pointer inside guest RAM, and VOLT injecting no faults and no power
cut (its vector calls then behave exactly as the same MMGR commands in order); anything
else is declined before a byte is read or written, and the controller runs those
commands alone.
"""
import numpy as np

from ...volt import MediaOp
from ...wire import MAX_PPAS, NvmOpc, PAGE_SIZE
from ..prp import Transfer

PH_READ = int(NvmOpc.PH_READ)
PH_WRITE = int(NvmOpc.PH_WRITE)
_LIST_ENTRIES = PAGE_SIZE // 8
_STEPS = np.arange(1, _LIST_ENTRIES + 1, dtype=np.uint64) * np.uint64(PAGE_SIZE)
_NOT_FLAT = object()


class Plan:
    """What a run needs once accepted: per command its address count `ns`, first address
    `first` (ns's exclusive prefix sum, one past the end last), data extent `xa` (guest
    address, or -1 with a Transfer in `xobj`), metadata pointer `mptr`, and the decoded
    addresses (reads: one row per address) or pages (writes, and reads of whole pages in
    order -- `whole` -- one row per page). `flat`: every command has the same address
    count, and the data extents (and metadata, if any) follow each other in guest RAM."""
    __slots__ = ("f", "first", "flat", "mptr", "ns", "nbytes", "whole", "xa", "xobj")


class Runs:
    """The run path of an LnvmMode (which it reads its geometry, VOLT and DMA engine from)."""

    def __init__(self, ftl):
        self.ftl = ftl
        self.dma = ftl.dma
        self.volt = ftl.volt
        self.core = ftl.core
        self.timing = ftl.timing
        geo = self.geo = ftl.geo
        f = geo.ppaf
        self._ppa_bits = geo.ppa_bits
        self._beyond = np.uint64(~((1 << geo.ppa_bits) - 1) & 0xFFFFFFFFFFFFFFFF)
        self._offs, self._masks, self._lims = ftl._offs, ftl._masks, ftl._lims
        self._sec_steps = np.arange(geo.nsectors, dtype=np.uint64) << np.uint64(f["sec"][0])
        # a write unit's addresses less its first, and the bits its first has none of: the
        # mode's usual form of a write (LnvmMode._usual), as arrays
        usual = {p: ftl._usual[int(NvmOpc.PH_WRITE), p] for p in (1, 2, 4)}
        self._unit_steps = {p: np.array(steps, dtype=np.uint64) for p, (steps, _) in usual.items()}
        self._pl_sec_bits = np.uint64(usual[1][1])
        self._plane_ids = np.arange(4, dtype=np.int64)
        self._sec_bits = np.uint64(((1 << f["sec"][1]) - 1) << f["sec"][0])
        self._index = np.arange(max(4096, PAGE_SIZE // 8 + 1), dtype=np.int64)
        self._zeros = np.zeros(4096, dtype=np.int64)
        # plane mode -> planes (0 where the mode is unknown or beyond the device)
        self._planes = np.array([p if p <= geo.nplanes else 0 for p in (1, 2, 4, 0)], dtype=np.int64)

    # ------------------------------------------------------------------ entry
    def run(self, ents: np.ndarray, i: int, arrival: int):
        """(k, results) for the run of writes or reads starting at record i: results =
        (status u16[k], failed-address bitmap u64[k], done int64[k]); (k, None) when the
        caller must run those k commands alone."""
        ops = ents["opcode"]
        op = int(ops[i])
        if op not in (PH_WRITE, PH_READ) or not self.volt.faultless:
            return 1, None
        rest = np.flatnonzero(ops[i:] != op)
        k = int(rest[0]) if rest.size else len(ops) - i
        run = ents[i:i + k]
        if k == 1 and op == PH_READ and not int(run["cdw12"][0]) & 0xFFFF:
            return 1, None                                   # io's own 4 KiB path
        if op == PH_WRITE and self.volt.read_only:
            return k, None
        plan = self._plan(run, op)
        if plan is None:
            return k, None
        return k, (self._write if op == PH_WRITE else self._read)(plan, arrival)

    # ------------------------------------------------------------------ checks
    def _plan(self, run: np.ndarray, op: int) -> Plan | None:
        counted = self.dma.bytes_read
        self._list_bytes = 0
        p = self._check(run, op)
        if p is None:                    # declined: the commands will be read again alone
            self.dma.bytes_read = counted
        return p

    def _check(self, run: np.ndarray, op: int) -> Plan | None:
        p = self._check_flat(run, op)
        return self._check_any(run, op) if p is _NOT_FLAT else p

    def _check_flat(self, run: np.ndarray, op: int):
        """_check_any for the usual run -- the same plane mode and address count in every
        command but the last, which may have fewer (the tail of a host call), each
        command's buffer (and metadata) one extent right after the previous one's -- in a
        few dozen array operations; _NOT_FLAT for any other run (or any doubt: _check_any
        then decides, declines included)."""
        geo, dma = self.geo, self.dma
        size = dma.size
        recs = run.tolist()          # a few records: plain integers beat array operations
        # (opcode, flags, cid, nsid, cdw2, cdw3, mptr, prp1, prp2, cdw10, cdw11, cdw12, ...)
        u, ul = recs[0][11], recs[-1][11]
        n, nl = (u & 0xFFFF) + 1, (ul & 0xFFFF) + 1
        planes = int(self._planes[(u >> 16) & 0x3])
        if n == 1 or nl == 1 or nl > n or n > MAX_PPAS or (u ^ ul) >> 16 or not planes:
            return _NOT_FLAT
        m = len(recs)
        secb = geo.sector_nbytes
        nbytes = n * secb
        p1 = recs[0][7]
        off = p1 & (PAGE_SIZE - 1)
        if off & 3:
            return _NOT_FLAT
        mp0 = recs[0][6]                                     # metadata: none, or one extent
        mstep = n * geo.meta_nbytes
        total = (m - 1) * n + nl
        if mp0 and mp0 + total * geo.meta_nbytes > size:
            return _NOT_FLAT
        spbas, prp2s, needs = [], [], []
        for i, r in enumerate(recs):
            spba, p2, a = r[9], r[8], p1 + i * nbytes
            k = n if r[11] == u else nl
            o = a & (PAGE_SIZE - 1)
            need = (o + k * secb - 1) // PAGE_SIZE           # PRP list entries
            if (r[3] != 1 or (r[11] != u and i < m - 1) or r[10] or spba & 7 or spba + 8 * k > size
                    or r[7] != a or r[6] != (mp0 + i * mstep if mp0 else 0)):
                return _NOT_FLAT
            if need == 1:
                if p2 != a - o + PAGE_SIZE:
                    return _NOT_FLAT
            elif need > 1 and (p2 & 7 or p2 + 8 * need > size or (p2 & (PAGE_SIZE - 1)) > PAGE_SIZE - 8 * need):
                return _NOT_FLAT
            spbas.append(spba >> 3)
            prp2s.append(p2 >> 3)
            needs.append(need)
        if p1 + total * secb > size:
            return _NOT_FLAT
        words, idx = dma.words, self._index
        if nl == n:
            raw = words[np.add.outer(spbas, idx[:n])].reshape(-1)
        else:
            raw = np.concatenate((words[np.add.outer(spbas[:-1], idx[:n])].reshape(-1), words[spbas[-1] + idx[:nl]]))
        prp1 = p1 + idx[:m] * nbytes
        base = (prp1 - prp1 % PAGE_SIZE).astype(np.uint64)
        need, needl = needs[0], needs[-1]
        if need > 1 and m > 1:                               # every command but the last, then it
            ent = words[np.add.outer(prp2s[:-1], idx[:need])]
            if np.count_nonzero(ent != np.add.outer(base[:-1], _STEPS[:need])):
                return _NOT_FLAT
        if needl > 1 and np.count_nonzero(words[prp2s[-1] + idx[:needl]] != base[-1] + _STEPS[:needl]):
            return _NOT_FLAT
        list_bytes = 8 * sum(k for k in needs if k > 1)
        p = Plan()
        p.flat = True
        p.ns = np.full(m, n, dtype=np.int64)
        p.ns[-1] = nl
        p.first = idx[:m + 1] * n
        p.first[-1] = total
        p.nbytes = p.ns * secb
        p.xa, p.xobj = prp1, None
        p.mptr = (mp0 + idx[:m] * mstep) if mp0 else self._zeros[:m]
        if op == PH_WRITE:
            p.whole = True
            p.f = self._pages(raw, p.ns, planes)
        else:
            p.whole = not nl % geo.nsectors and self._whole(raw, n)
            p.f = self._decode(raw[::geo.nsectors] if p.whole else raw)
        if p.f is None:
            return _NOT_FLAT
        dma.bytes_read += 8 * total + list_bytes
        return p

    def _whole(self, raw: np.ndarray, n: int) -> bool:
        """Every command's addresses are whole pages, their sectors in order."""
        nsec = self.geo.nsectors
        if n % nsec:
            return False
        g = raw.reshape(-1, nsec)
        return not (np.count_nonzero((g - g[:, :1]) != self._sec_steps)
                    or np.count_nonzero(g[:, 0] & self._sec_bits))

    def _check_any(self, run: np.ndarray, op: int) -> Plan | None:
        geo, dma = self.geo, self.dma
        secb, sos = geo.sector_nbytes, geo.meta_nbytes
        size = dma.size
        if (run["nsid"] != 1).any():
            return None
        cdw12 = run["cdw12"].astype(np.int64)
        ns = (cdw12 & 0xFFFF) + 1
        if (ns > MAX_PPAS).any():
            return None
        planes = self._planes[(cdw12 >> 16) & 0x3]
        if not planes.all() or (op == PH_WRITE and (planes != planes[0]).any()):
            return None
        p = Plan()
        p.flat = False
        p.ns = ns
        p.first = np.zeros(ns.size + 1, dtype=np.int64)
        np.cumsum(ns, out=p.first[1:])
        total = int(p.first[-1])
        # the PPA lists: one gather of guest RAM words for every command that has one
        spba = run["cdw10"].astype(np.uint64) | (run["cdw11"].astype(np.uint64) << np.uint64(32))
        multi = ns > 1
        if multi.all() and (ns == ns[0]).all():
            if (spba % 8).any() or (spba + np.uint64(8 * int(ns[0])) > np.uint64(size)).any():
                return None
            idx = (spba // np.uint64(8)).astype(np.int64)[:, None] + np.arange(int(ns[0]))
            raw = dma.words[idx].reshape(-1)
        elif multi.any():
            sp, nm = spba[multi], ns[multi]
            if (sp % 8).any() or (sp + (8 * nm).astype(np.uint64) > np.uint64(size)).any():
                return None
            raw = np.empty(total, dtype=np.uint64)
            raw[p.first[:-1][~multi]] = spba[~multi]
            pos = np.repeat(p.first[:-1][multi], nm)
            pos += np.arange(pos.size) - np.repeat(np.cumsum(nm) - nm, nm)
            raw[pos] = dma.words[np.repeat((sp // np.uint64(8)).astype(np.int64) - p.first[:-1][multi], nm) + pos]
        else:
            raw = spba
        # the data: one extent of guest RAM per command (PRP1, PRP2 or a PRP list page)
        p.nbytes = ns * secb
        if not self._extents(run, p, size):
            try:
                p.xobj = [Transfer(dma, int(a), int(b), int(n))
                          for a, b, n in zip(run["prp1"], run["prp2"], p.nbytes)]
            except Exception:                                # noqa: BLE001 - io raises it alone
                return None
            p.xa = np.array([int(x.pages[0]) + x.offset if x.contiguous else -1 for x in p.xobj],
                            dtype=np.int64)
        p.mptr = run["mptr"].astype(np.int64)
        has = p.mptr != 0
        if has.any() and ((p.mptr[has] < 0).any() or (p.mptr[has] + ns[has] * sos > size).any()):
            return None
        p.whole = op == PH_WRITE
        p.f = self._pages(raw, ns, int(planes[0])) if op == PH_WRITE else self._decode(raw)
        if p.f is None:
            return None
        # accepted: count the list reads as _ppas and the PRP walk count them
        dma.bytes_read += 8 * int(ns[multi].sum()) + self._list_bytes
        return p

    def _extents(self, run: np.ndarray, p: Plan, size: int) -> bool:
        """p.xa from the PRPs when every command's buffer is one extent of guest RAM and
        its PRP list (if any) one page; else False (Transfer objects then say more)."""
        prp1, prp2 = run["prp1"].astype(np.int64), run["prp2"].astype(np.int64)
        if (prp1 < 0).any() or (prp2 < 0).any():
            return False
        off = prp1 % PAGE_SIZE
        if (off % 4).any() or (prp1 + p.nbytes > size).any():
            return False
        npages = (off + p.nbytes + PAGE_SIZE - 1) // PAGE_SIZE
        base = prp1 - off
        two = npages == 2
        if two.any() and (prp2[two] != base[two] + PAGE_SIZE).any():
            return False
        lst = npages > 2
        p.xobj = None
        if lst.any():
            l2, nl, b = prp2[lst], npages[lst] - 1, base[lst]
            if (l2 % 8).any() or (nl > _LIST_ENTRIES - (l2 % PAGE_SIZE) // 8).any() or (l2 + 8 * nl > size).any():
                return False
            if (nl == nl[0]).all():
                ent = self.dma.words[(l2 // 8)[:, None] + np.arange(int(nl[0]))]
                if (ent != (_STEPS[:int(nl[0])] + b[:, None].astype(np.uint64))).any():
                    return False
            else:
                for a, n, b0 in zip(l2.tolist(), nl.tolist(), b.tolist()):
                    ent = self.dma.words[a // 8:a // 8 + n]
                    if (ent != _STEPS[:n] + np.uint64(b0)).any():
                        return False
            self._list_bytes = 8 * int(nl.sum())
        p.xa = prp1
        return True

    def _decode(self, raw: np.ndarray):
        """(n, 6) ch, lun, blk, pl, pg, sec, or None for an address outside the format or
        the geometry."""
        if (raw & self._beyond).any():
            return None
        f = ((raw[:, None] >> self.ftl._offs) & self.ftl._masks).astype(np.int64)
        return None if (f >= self.ftl._lims).any() else f

    def _pages(self, raw: np.ndarray, ns: np.ndarray, planes: int):
        """The pages (ch, lun, blk, pl, pg, 0) a run of writes programs, or None unless each
        command writes whole pages -- sectors 0..n-1 in order, each page on planes
        0..planes-1 in a row, no page twice -- inside the geometry: the usual form of
        _write's checks, done on the raw PPAs (a page's sectors differ in the sector field
        only, a unit's pages in the plane field only)."""
        per = self.geo.nsectors * planes
        if np.count_nonzero(ns % per):
            return None
        g = raw.reshape(-1, per)                             # one row per unit, from its first address
        heads = g[:, 0]
        if (np.count_nonzero((g - heads[:, None]) != self._unit_steps[planes])
                or np.count_nonzero(heads & self._pl_sec_bits)):
            return None
        fu = self._decode(heads)
        if fu is None:
            return None
        if heads.size > 1:                                   # no unit twice in one command
            cmd = np.repeat(np.arange(ns.size, dtype=np.int64), ns // per)
            if self._ppa_bits <= 40:
                key = np.sort((cmd << self._ppa_bits) | heads.astype(np.int64))
                if (key[1:] == key[:-1]).any():
                    return None
            else:
                order = np.lexsort((heads, cmd))
                k, c = heads[order], cmd[order]
                if ((k[1:] == k[:-1]) & (c[1:] == c[:-1])).any():
                    return None
        if planes == 1:
            return fu
        pages = np.repeat(fu, planes, axis=0)
        pages.reshape(-1, planes, 6)[:, :, 3] = self._plane_ids[:planes]
        return pages

    # ------------------------------------------------------------------ execution
    def _segments(self, p: Plan):
        """(first command, end command) of the runs of commands whose data extents -- and
        metadata, when they have any -- follow each other in guest RAM."""
        n = p.ns.size
        sos = self.geo.meta_nbytes
        if n == 1:
            return [(0, 1)]
        xa, nb, mp = p.xa, p.nbytes, p.mptr
        cont = (xa[1:] == xa[:-1] + nb[:-1]) & (xa[:-1] >= 0) & (xa[1:] >= 0)
        has = mp != 0
        cont &= (has[1:] == has[:-1]) & (~has[1:] | (mp[1:] == mp[:-1] + p.ns[:-1] * sos))
        brk = np.flatnonzero(~cont) + 1
        edges = [0, *brk.tolist(), n]
        return list(zip(edges[:-1], edges[1:]))

    @staticmethod
    def _overlap(p: Plan, c: int, d: int, secb: int, sos: int) -> bool:
        """Whether the data and metadata extents of commands c..d-1 overlap."""
        n = int(p.first[d] - p.first[c])
        x, m = int(p.xa[c]), int(p.mptr[c])
        return x < m + n * sos and m < x + n * secb

    def _outcomes(self, st: np.ndarray, at: np.ndarray, per: int, ns: np.ndarray):
        """Status and bitmap per command from per-MMGR statuses; at = each command's first
        MMGR (one past the end last)."""
        k = ns.size
        status = np.zeros(k, dtype=np.uint16)
        result = np.zeros(k, dtype=np.uint64)
        if st.any():
            for c in range(k):
                s = st[at[c]:at[c + 1]]
                if s.any():
                    code, failed = self.ftl._outcome(s, per, int(ns[c]))
                    status[c], result[c] = int(code), failed
        return status, result

    def _done(self, op, f: np.ndarray, at: np.ndarray, arrival: int) -> np.ndarray:
        """Each command's completion time, charged in order as _write/_read charge it."""
        return self.ftl._charges(op, f, at, self.geo.page_nbytes, arrival)

    def _write(self, p: Plan, arrival: int):
        geo, dma = self.geo, self.dma
        nsec, sos = geo.nsectors, geo.meta_nbytes
        pages = p.f
        st = np.empty(pages.shape[0], dtype=np.uint8)
        at = p.first // nsec                                 # each command's first page
        for c, d in ([(0, p.ns.size)] if p.flat else self._segments(p)):
            if p.xa[c] >= 0:
                start = int(p.xa[c])
                data = dma.read(start, int(p.first[d] - p.first[c]) * geo.sector_nbytes)
            else:
                data = p.xobj[c].read()
            mp = int(p.mptr[c])
            oob = dma.view(mp, int(p.first[d] - p.first[c]) * sos).reshape(-1, nsec * sos) if mp else None
            a, b = int(at[c]), int(at[d])
            seg = pages[a:b]
            st[a:b] = self.core.program_pages(seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3], seg[:, 4],
                                              data.reshape(-1, geo.page_nbytes), oob)
        self.ftl.bytes_written += int(p.nbytes.sum())
        status, result = self._outcomes(st, at, nsec, p.ns)
        return status, result, self._done(MediaOp.PROGRAM, pages, at, arrival)

    def _read(self, p: Plan, arrival: int):
        geo, dma, volt = self.geo, self.dma, self.volt
        secb, sos, nsec, pnb = geo.sector_nbytes, geo.meta_nbytes, geo.nsectors, geo.page_nbytes
        f = p.f
        if p.whole:                                          # one row per page already
            pages = f
            total = pages.shape[0] * nsec
            at = p.first // nsec                             # each command's first page read
            runi = None
        else:
            total = f.shape[0]
            start = np.ones(total, dtype=bool)               # consecutive addresses on one page:
            start[1:] = (f[1:, :5] != f[:-1, :5]).any(axis=1)   # one page read, within a command
            start[p.first[:-1]] = True
            pages = f[start]
            runi = np.cumsum(start) - 1
            at = np.append(runi[p.first[:-1]], pages.shape[0])
        st, rows = self.core.read_pages(pages[:, 0], pages[:, 1], pages[:, 2], pages[:, 3], pages[:, 4])
        failed = np.count_nonzero(st)
        data_rows = volt.data_rows
        self.ftl.bytes_read += int(p.nbytes.sum())
        if p.flat and p.whole and not p.mptr[0]:
            # the usual pblk / vblk read: whole pages into one extent, one gather of 16 KiB rows
            dma.bytes_written += total * secb                # Transfer.sink: filled in place
            out = dma.view(int(p.xa[0]), total * secb).reshape(-1, pnb)
            np.take(data_rows, rows, axis=0, out=out, mode="clip")
            if not failed:
                k = p.ns.size
                return np.zeros(k, dtype=np.uint16), np.zeros(k, dtype=np.uint64), self._done(MediaOp.READ, pages, at, arrival)
            out[st != 0] = 0
            status, result = self._outcomes(np.repeat(st, nsec), p.first, 1, p.ns)
            return status, result, self._done(MediaOp.READ, pages, at, arrival)
        if runi is None:
            runi = np.repeat(np.arange(pages.shape[0]), nsec)
        inplace = p.xa >= 0
        dma.bytes_written += int(p.nbytes[inplace].sum())    # Transfer.sink: filled in place
        host_oob = volt.oob_rows[:, :nsec * sos].reshape(-1, nsec, sos)
        fsec = (np.tile(np.arange(nsec), pages.shape[0]) if p.whole else f[:, 5])
        bad_all = st[runi] != 0 if failed else None
        # one gather per extent of guest RAM (commands one by one fill data, then metadata,
        # each in turn: an extent whose metadata overlaps its data goes command by command)
        segs = [(0, p.ns.size)] if p.flat else self._segments(p)
        if p.mptr.any():
            segs = [s for c, d in segs for s in
                    (((c, d),) if d - c == 1 or not self._overlap(p, c, d, secb, sos)
                     else ((i, i + 1) for i in range(c, d)))]
        for c, d in segs:
            a0, a1 = int(p.first[c]), int(p.first[d])
            n = a1 - a0
            buf = dma.view(int(p.xa[c]), n * secb) if inplace[c] else np.empty(n * secb, dtype=np.uint8)
            buf2 = buf.reshape(n, secb)
            r = runi[a0:a1]
            if p.whole:
                np.take(data_rows, rows[at[c]:at[d]], axis=0, out=buf.reshape(-1, pnb), mode="clip")
            else:
                np.take(data_rows.reshape(-1, secb), rows[r] * nsec + fsec[a0:a1], axis=0, out=buf2, mode="clip")
            bad = bad_all[a0:a1] if failed else None
            if bad is not None and bad.any():
                buf2[bad] = 0
            else:
                bad = None
            if p.mptr[c]:
                m2 = dma.view(int(p.mptr[c]), n * sos).reshape(n, sos)
                m2[:] = host_oob[rows[r], fsec[a0:a1]]
                if bad is not None:
                    m2[bad] = 0
            if not inplace[c]:
                p.xobj[c].write(buf)
        status, result = self._outcomes(st[runi], p.first, 1, p.ns)
        return status, result, self._done(MediaOp.READ, pages, at, arrival)
