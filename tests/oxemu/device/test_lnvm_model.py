"""Random erase/write/read traffic checked against a page-at-a-time reference model of the
NAND rules: statuses, failed-address bitmaps, data and OOB must all agree."""
import numpy as np
import pytest

from oxhost.lightnvm import Addr, NvmError, PMode

SECTOR, SOS = 4096, 16


class NandModel:
    """What a device that programs one page at a time, in command order, must answer."""

    def __init__(self, geo):
        self.geo = geo
        self.next = {}                       # (ch, lun, blk, pl) -> next page to program
        self.pages = {}                      # (ch, lun, blk, pl, pg) -> (data, oob)

    def erase(self, bps):
        for bp in bps:
            self.next[bp] = 0

    def write(self, pages, data, meta):
        """pages: [(ch, lun, blk, pl, pg)] in command order, 4 sectors each."""
        failed = 0
        per = self.geo.nsectors
        for i, p in enumerate(pages):
            bp = p[:4]
            if p[4] == self.next.get(bp, 0):
                self.next[bp] = p[4] + 1
                self.pages[p] = (data[i * per * SECTOR:(i + 1) * per * SECTOR],
                                 meta[i * per * SOS:(i + 1) * per * SOS])
            else:
                failed |= ((1 << per) - 1) << (i * per)
        return failed

    def read(self, addrs):
        data = np.zeros(len(addrs) * SECTOR, np.uint8)
        meta = np.zeros(len(addrs) * SOS, np.uint8)
        failed = 0
        for i, a in enumerate(addrs):
            key = (a.ch, a.lun, a.blk, a.pl, a.pg)
            if a.pg < self.next.get(key[:4], 0):
                d, m = self.pages[key]
                data[i * SECTOR:(i + 1) * SECTOR] = d[a.sec * SECTOR:(a.sec + 1) * SECTOR]
                meta[i * SOS:(i + 1) * SOS] = m[a.sec * SOS:(a.sec + 1) * SOS]
            else:
                failed |= 1 << i
        return data, meta, failed


def _run(dev, fn):
    try:
        out = fn()
        return 0, 0, out
    except NvmError as e:
        return e.status, e.failed, (e.data, e.meta)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lnvm_random_traffic_matches_the_page_at_a_time_model(dev, seed):
    g = dev.geo
    rng = np.random.default_rng(seed)
    model = NandModel(g)
    blocks = [(ch, lun, blk) for ch in range(g.nchannels) for lun in range(g.nluns) for blk in range(3)]
    for step in range(250):
        op = rng.choice(["erase", "write", "write", "read"])
        if op == "erase":
            picks = [blocks[i] for i in rng.choice(len(blocks), int(rng.integers(1, 4)), replace=False)]
            if rng.random() < 0.5:
                bps = [b + (pl,) for b in picks for pl in range(g.nplanes)]
                pmode = PMode.DUAL
            else:
                bps = [b + (int(rng.integers(0, g.nplanes)),) for b in picks]
                pmode = PMode.SNGL
            dev.addr_erase([Addr(ch, lun, pl=pl, blk=blk) for ch, lun, blk, pl in bps], pmode=pmode)
            model.erase(bps)
        elif op == "write":
            pages = []
            for _ in range(int(rng.integers(1, 9))):
                ch, lun, blk = blocks[int(rng.integers(len(blocks)))]
                planes = range(g.nplanes) if rng.random() < 0.7 else [int(rng.integers(g.nplanes))]
                nxt = model.next.get((ch, lun, blk, planes[0]), 0)
                pg = nxt if rng.random() < 0.75 else int(rng.integers(0, g.npages))
                if pg >= g.npages:
                    continue
                pages += [(ch, lun, blk, pl, pg) for pl in planes]
            if not pages:
                continue
            addrs = [Addr(ch, lun, pl=pl, blk=blk, pg=pg, sec=s) for ch, lun, blk, pl, pg in pages
                     for s in range(g.nsectors)]
            data = rng.integers(0, 256, len(addrs) * SECTOR, dtype=np.uint8)
            meta = rng.integers(0, 256, len(addrs) * SOS, dtype=np.uint8)
            status, failed, _ = _run(dev, lambda: dev.addr_write(addrs, data, meta=meta, pmode=PMode.SNGL))
            want = model.write(pages, data, meta)
            assert failed == want, f"step {step}: write bitmap {failed:#x}, model {want:#x}"
            assert status == (0x40FF if want else 0), f"step {step}"
        else:
            n = int(rng.integers(1, 80))
            addrs = []
            for _ in range(n):
                ch, lun, blk = blocks[int(rng.integers(len(blocks)))]
                addrs.append(Addr(ch, lun, pl=int(rng.integers(g.nplanes)), blk=blk,
                                  pg=int(rng.integers(0, 4)), sec=int(rng.integers(g.nsectors))))
            status, failed, out = _run(dev, lambda: dev.addr_read(addrs, pmode=PMode.SNGL, with_meta=True))
            want_data, want_meta, want_failed = model.read(addrs)
            assert failed == want_failed, f"step {step}: read bitmap {failed:#x}, model {want_failed:#x}"
            assert status == (0x42FF if want_failed else 0), f"step {step}"
            data, meta = out
            assert np.array_equal(data, want_data), f"step {step}: data differs"
            assert np.array_equal(meta, want_meta), f"step {step}: OOB differs"
