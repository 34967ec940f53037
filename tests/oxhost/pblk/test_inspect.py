"""pblk's lines read over a read-only Machine (oxhost.pblk.inspect) agree with the pblk that
wrote them and with the pblk that recovers them next; damaged metadata is reported, and
the disk file stays byte-identical."""
import numpy as np

from oxemu import Machine
from oxemu.volt.store import layout
from oxhost.lightnvm import Device
from oxhost.pblk import Pblk
from oxhost.pblk.inspect import inspect_lines
from tests.helpers import file_digest

from .conftest import SECTOR, small_geometry, stamp, unclean_stop


def _inspect(path):
    """inspect_lines over a read-only machine on the disk file."""
    with Machine(lnvm=1, volt=0, disk=path, geometry=small_geometry(), readonly=True, ram_mib=64) as m:
        dev = Device.open(m)
        try:
            return inspect_lines(dev, 0, small_geometry().total_luns - 1)
        finally:
            dev.close()


def _workload(p, rounds=3):
    """Writes that fill and overwrite lines (so GC runs), discards, flushes."""
    n = p.size // SECTOR
    rng = np.random.default_rng(5)
    for r in range(rounds):
        for lba in range(0, n, 256):
            k = min(256, n - lba)
            if rng.random() < 0.6:
                p.write_sectors(lba, stamp(lba, k, tag=r))
        p.discard_sectors(int(rng.integers(0, n - 64)), 64)
        p.flush()


def test_lines_after_a_clean_stop_match_the_writer(disk_pblk, tmp_path):
    p = disk_pblk()
    _workload(p)
    vsc = p.l2p.vsc.copy()
    states = {ln.id: ln.state.name.lower() for ln in p.lm.lines}
    seqs = {ln.id: ln.seq for ln in p.lm.lines}
    p.close()
    p.machine.close()
    path = str(tmp_path / "ox.disk")
    before = file_digest(path)
    out = _inspect(path)
    assert file_digest(path) == before
    lines = out["lines"]
    assert [ln["valid_sectors"] for ln in lines] == vsc.tolist()
    assert out["mapped_sectors"] == int(vsc.sum()) and out["recovery"]["corrupt_emeta"] == 0
    for ln in lines:
        want = states[ln["id"]]
        assert ln["state"] == want or (want == "open" and ln["state"] == "closed" and ln["emeta"]["valid"])
        if ln["state"] in ("open", "closed"):
            assert ln["seq"] == seqs[ln["id"]]
            assert ln["smeta"]["valid"] and ln["smeta"]["seq"] == ln["seq"] and ln["smeta"]["this_target"]
        if ln["state"] == "closed":
            em = ln["emeta"]
            assert em["valid"] and em["seq"] == ln["seq"] and em["error"] is None
            assert set(em["wa"]) == {"user", "gc", "pad"} and em["wa"]["user"] > 0
            assert em["counters"]["lines_closed"] >= 1
        if ln["state"] == "free":
            assert not ln["smeta"]["present"] and not ln["emeta"]["present"]
    closed = [ln for ln in lines if ln["state"] == "closed"]
    assert len(closed) >= 2
    newest = max(closed, key=lambda ln: ln["seq"])
    assert newest["emeta"]["wa"]["user"] == max(ln["emeta"]["wa"]["user"] for ln in closed)


def test_after_an_unclean_stop_the_open_line_shows_and_recovery_agrees(disk_pblk, tmp_path):
    p = disk_pblk()
    _workload(p, rounds=2)
    p.write_sectors(0, stamp(0, 40, tag=9))
    p.flush()
    unclean_stop(p)
    path = str(tmp_path / "ox.disk")
    before = file_digest(path)
    out = _inspect(path)
    assert file_digest(path) == before
    opened = [ln for ln in out["lines"] if ln["state"] == "open"]
    assert len(opened) == 1
    assert opened[0]["smeta"]["valid"] and not opened[0]["emeta"]["present"]
    assert opened[0]["seq"] == max(ln["seq"] or 0 for ln in out["lines"])
    q = disk_pblk()                                   # what the next mount rebuilds
    assert [ln["valid_sectors"] for ln in out["lines"]] == q.l2p.vsc.tolist()


def test_a_damaged_emeta_is_reported_and_its_line_still_counted(disk_pblk, make_machine, tmp_path):
    p = disk_pblk()
    _workload(p)
    line = next(ln for ln in p.lm.lines if ln.state.name == "CLOSED")
    lg = p.lg
    unit = int(line.emeta_units[0])
    pg, li = divmod(unit, lg.nluns)
    ch, lun = lg.luns[li]
    p.close()
    p.machine.close()
    g = small_geometry()
    sec = ((((ch * g.nluns + lun) * g.nblocks + line.id) * g.npages + pg) * g.nplanes) * g.nsectors
    off = layout(g)["data_off"] + sec * g.sector_nbytes + 40      # inside the CRC'd header
    path = str(tmp_path / "ox.disk")
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))
    out = _inspect(path)
    row = out["lines"][line.id]
    assert row["state"] == "closed" and row["emeta"]["present"] and not row["emeta"]["valid"]
    assert "CRC" in row["emeta"]["error"]
    assert out["recovery"]["corrupt_emeta"] == 1 and out["recovery"]["lines_scanned"] >= 1
    q = Pblk(Device.open(make_machine(volt=0, disk=path, geometry=g, ram_mib=64)))
    assert [ln["valid_sectors"] for ln in out["lines"]] == q.l2p.vsc.tolist()
