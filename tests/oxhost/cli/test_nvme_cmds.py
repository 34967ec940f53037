"""`ox nvme ...`: nvme-cli's commands against a disk file, with nvme-cli's field names,
layout and JSON keys; every value read over the bus from the emulated controller."""
import contextlib
import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from oxemu import Faults, Geometry, Machine, probe_label
from oxemu.wire import (PCI_DEVICE_ID, PCI_VENDOR_ID, SMART_DATA_UNIT_NBYTES, AdminOpc, NvmOpc, Status)
from oxhost.blockdev import MediaError
from oxhost.cli import main, nvme_cmds
from oxhost.driver import NvmeDriver
from oxhost.lightnvm import Addr, Device, NvmError
from oxhost.nvme.admin import identify_controller, identify_namespace, nvm_identity
from oxhost.stack import open_stack

GEO = Geometry.small(nblocks=16)          # 2ch x 2lun x 16blk x 16pg
SECTOR = 4096
MODES = ["appnvm", "pblk"]


def sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pattern(nsec, seed) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, nsec * SECTOR, dtype=np.uint8)


@pytest.fixture
def ox():
    runner = CliRunner()

    def run(*args, ok=True):
        res = runner.invoke(main, list(args))
        if ok:
            assert res.exit_code == 0, (args, res.output, res.stderr)
        return res
    return run


def fmt_disk(ox, path, mode) -> str:
    ox("format", "--disk", path, "--mode", mode, "--geometry", "2x2x16x16", "--yes")
    return path


def kv(text: str) -> dict:
    """`name : value` lines (nvme-cli's layout) as a dict of stripped names to values."""
    out = {}
    for line in text.splitlines():
        if " : " in line or line.rstrip().endswith(":"):
            k, _, v = line.partition(":")
            out.setdefault(k.strip(), v[1:] if v.startswith(" ") else v)
    return out


# ---------------------------------------------------------------------------- smart-log
def _session_counts(st) -> dict:
    """What the device counted in one power-on, for the SMART counters (its own units:
    a data unit is 1000 x 512 bytes, rounded up per power-on)."""
    dev = st.machine.device
    opc = dev.controller.opcodes
    return dict(data_units_read=math.ceil(dev.mode.bytes_read / SMART_DATA_UNIT_NBYTES),
                data_units_written=math.ceil(dev.mode.bytes_written / SMART_DATA_UNIT_NBYTES),
                host_read_commands=opc[NvmOpc.READ] + opc[NvmOpc.PH_READ],
                host_write_commands=opc[NvmOpc.WRITE] + opc[NvmOpc.PH_WRITE],
                media_errors=dev.volt.counters["read_errors"])


@pytest.mark.parametrize("mode", MODES)
def test_smart_log_json_counts_a_known_workload_across_power_cycles(ox, tmp_path, mode):
    """Three power-ons through the real stack: a clean one (300 sectors written, 200 read),
    one whose plug is pulled, one whose reads hit injected media errors. `ox nvme
    smart-log -o json` then reports their sums, under nvme-cli's keys."""
    disk = str(tmp_path / "ox.disk")
    sessions = []

    st = open_stack(mode, disk, geometry=GEO)                        # 1: clean
    bd = st.blockdev
    for s in range(0, 300, 100):
        bd.write_sectors(s, pattern(100, s))
    for s in range(0, 200, 50):
        bd.read_sectors(s, 50)
    st.close()
    sessions.append(_session_counts(st))
    if mode == "appnvm":                    # the host's own count of what it asked for
        assert sessions[0]["data_units_written"] == math.ceil(300 * SECTOR / SMART_DATA_UNIT_NBYTES) == 3
        assert sessions[0]["data_units_read"] == math.ceil(200 * SECTOR / SMART_DATA_UNIT_NBYTES) == 2
        assert sessions[0]["host_write_commands"] == bd.counters["write_cmds"]
        assert sessions[0]["host_read_commands"] == bd.counters["read_cmds"]

    st = open_stack(mode, disk, geometry=GEO)                        # 2: the plug is pulled
    st.blockdev.write_sectors(400, pattern(64, 9))
    st.blockdev.flush()
    st.abandon()
    sessions.append(_session_counts(st))

    faults = Faults()
    st = open_stack(mode, disk, geometry=GEO, faults=faults)         # 3: media errors
    st.blockdev.write_sectors(600, pattern(8, 10))
    faults.read_error_rate = 1.0
    failed = 0
    for lba in (0, 37, 150):
        with contextlib.suppress(MediaError):
            st.blockdev.read_sectors(lba, 1)
            continue
        failed += 1
    faults.read_error_rate = 0.0
    st.close()
    sessions.append(_session_counts(st))
    assert failed == 3 and sessions[2]["media_errors"] >= 3

    before = sha(disk)
    got = json.loads(ox("nvme", "smart-log", "-o", "json", "--disk", disk).stdout)
    assert sha(disk) == before                                       # a read-only look
    for key in ("data_units_read", "data_units_written", "host_read_commands", "host_write_commands",
                "media_errors"):
        assert got[key] == sum(s[key] for s in sessions), key
    assert got["power_cycles"] == 3 + 1                              # + the look's own power-on
    assert got["unsafe_shutdowns"] == 1
    assert got["critical_warning"] == 0 and got["temperature"] == 313 and got["avail_spare"] == 100
    assert got["num_err_log_entries"] == 0                           # the look's own session
    text = kv(ox("nvme", "smart-log", "--disk", disk).stdout)
    assert text["data_units_written"] == str(got["data_units_written"])
    assert text["unsafe_shutdowns"] == "1" and text["temperature"] == "40 C"
    assert text["available_spare"] == "100%" and text["critical_warning"] == "0"


def test_smart_log_binary_is_the_log_page_get_log_dumps(ox, tmp_path):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), "pblk")
    raw = ox("nvme", "smart-log", "-b", "--disk", disk).stdout_bytes
    assert len(raw) == 512
    dumped = ox("nvme", "get-log", "--log-id", "2", "--log-len", "512", "-b", "--disk", disk).stdout_bytes
    assert dumped == raw
    dump = ox("nvme", "get-log", "-i", "0x02", "-l", "512", "--disk", disk).stdout.splitlines()
    assert dump[0] == f"Device:{disk} log-id:2 namespace-id:0xffffffff"
    rows = [bytes.fromhex(line[6:53].replace(" ", "")) for line in dump[2:]]
    assert b"".join(rows) == raw and dump[2].startswith("0000: ")


# ---------------------------------------------------------------------------- identify
def _wire(disk, lnvm):
    with Machine(lnvm=lnvm, volt=0, disk=disk, geometry=GEO, readonly=True) as m:
        drv = NvmeDriver(m)
        out = identify_controller(drv), identify_namespace(drv), (nvm_identity(drv) if lnvm else None)
        drv.shutdown()
    return out


@pytest.mark.parametrize("mode", MODES)
def test_id_ctrl_and_id_ns_print_what_the_device_identifies(ox, tmp_path, mode):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), mode)
    ctrl, ns, _ = _wire(disk, 1 if mode == "pblk" else 0)
    out = ox("nvme", "id-ctrl", "--disk", disk).stdout
    assert out.startswith("NVME Identify Controller:\nvid     : 0x1d1d\nssvid   : 0x1f1f\n")
    t = kv(out)
    assert t["sn"].rstrip() == "deadbeef" and t["mn"].startswith("OX ")
    assert t["mdts"] == str(ctrl.mdts) and t["elpe"] == "63" and t["nn"] == "1"
    assert t["sqes"] == "0x66" and t["cqes"] == "0x44" and t["ver"] == "10200"
    assert t["oncs"] == (f"{ctrl.oncs:#x}" if ctrl.oncs else "0") and t["vwc"] == (f"{ctrl.vwc:#x}" if ctrl.vwc else "0")
    assert out.rstrip().endswith("idle_power:- active_power:-")
    j = json.loads(ox("nvme", "id-ctrl", "-o", "json", "--disk", disk).stdout)
    assert (j["vid"], j["ssvid"]) == (PCI_VENDOR_ID, PCI_DEVICE_ID) == (0x1D1D, 0x1F1F)
    assert (j["mdts"], j["oncs"], j["vwc"], j["ver"], j["elpe"]) == (ctrl.mdts, ctrl.oncs, ctrl.vwc, 0x10200, 63)
    assert j["sn"].rstrip() == "deadbeef" and len(j["psds"]) == 1 and "subnqn" not in j

    out = ox("nvme", "id-ns", "--disk", disk).stdout
    t = kv(out)
    assert out.startswith("NVME Identify Namespace 1:\n")
    assert t["nsze"] == f"{ns.nsze:#x}" and t["nsfeat"] == (f"{ns.nsfeat:#x}" if ns.nsfeat else "0")
    assert "lbaf  0 : ms:0   lbads:12 rp:0 (in use)" in out.splitlines()
    j = json.loads(ox("nvme", "id-ns", "-o", "json", "--disk", disk).stdout)
    assert j["nsze"] == j["ncap"] == ns.nsze and j["lbafs"] == [dict(ms=0, ds=12, rp=0)]
    assert j["vs"] == [1 if mode == "pblk" else 0]
    if mode == "appnvm":                       # the namespace is the volume the label records
        assert ns.nsze * SECTOR == probe_label(disk).capacity_bytes or not probe_label(disk).capacity_bytes
    res = ox("nvme", "id-ns", "-n", "2", "--disk", disk, ok=False)
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "INVALID_NS" in res.stderr


def test_lnvm_id_ns_prints_the_12_identity_fields_and_geometry(ox, tmp_path):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), "pblk")
    _, _, ident = _wire(disk, 1)
    g, f = ident.group, ident.ppaf
    out = ox("nvme", "lnvm", "id-ns", "--disk", disk).stdout
    lines = out.splitlines()
    assert lines[:7] == ["LightNVM Identify Geometry (1):", "verid    : 0x1", "vmnt     : 0", "cgrps    : 1",
                         "cap      : 0", "dom      : 0", "ppaf     :"]
    assert f" ch offs : {f.ch_offset} ch bits  : {f.ch_len}" in lines
    assert f" sec offs: {f.sect_offset} sec bits : {f.sect_len}" in lines
    t = kv(out)
    assert (t["chnls"], t["luns"], t["plns"], t["blks"], t["pgs"]) == ("2", "2", "2", "16", "16")
    assert (t["fpg_sz"], t["csecs"], t["sos"]) == ("16384", "4096", "16")
    assert t["mpos"] == "0x20202" and t["trdt"] == str(g.trdt) and t["tbem"] == str(g.tbem)
    j = json.loads(ox("nvme", "lnvm", "id-ns", "-o", "json", "--disk", disk).stdout)
    assert (j["verid"], j["cgrps"]) == (1, 1)
    assert j["ppaf"] == {n: getattr(f, n) for n in ("ch_offset", "ch_len", "lun_offset", "lun_len", "pln_offset",
                                                     "pln_len", "blk_offset", "blk_len", "pg_offset", "pg_len",
                                                     "sect_offset", "sect_len")}
    grp = j["groups"][0]
    assert (grp["chnls"], grp["luns"], grp["plns"], grp["blks"], grp["pgs"]) == (2, 2, 2, 16, 16)
    assert (grp["trdt"], grp["tprt"], grp["tbet"], grp["mpos"]) == (g.trdt, g.tprt, g.tbet, 0x020202)
    assert ox("nvme", "lnvm", "id-ns", "-b", "--disk", disk).stdout_bytes == bytes(ident)


# ---------------------------------------------------------------------------- logs
def test_get_log_of_an_unknown_log_id_fails_with_one_line_naming_the_status(ox, tmp_path):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), "appnvm")
    res = ox("nvme", "get-log", "--log-id", "0x7f", "--log-len", "64", "--disk", disk, ok=False)
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("ox: error: get log page 0x7f:")
    assert "INVALID_LOG_PAGE (0x4109)" in res.stderr
    res = ox("nvme", "get-log", "--disk", disk, ok=False)
    assert res.exit_code == 2 and "--log-id" in res.stderr
    res = ox("nvme", "get-log", "-i", "2", "-l", "0", "--disk", disk, ok=False)
    assert res.exit_code == 2 and res.stderr.count("\n") == 1


@contextlib.contextmanager
def _in_session(monkeypatch, driver, name):
    """The nvme commands run on a power-on the test holds (the error log is per power-on)."""
    @contextlib.contextmanager
    def device(*_a, **_kw):
        yield nvme_cmds._Dev(name, driver)
    monkeypatch.setattr(nvme_cmds, "_device", device)
    yield


@pytest.mark.parametrize("mode", MODES)
def test_error_log_shows_the_errors_provoked_in_the_session_newest_first(ox, tmp_path, monkeypatch, mode):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), mode)
    m = Machine(lnvm=1 if mode == "pblk" else 0, volt=0, disk=disk, geometry=GEO, readonly=True)
    try:
        if mode == "pblk":
            dev = Device.open(m)
            drv = dev.driver
            with pytest.raises(NvmError):
                dev.addr_read([Addr(0, 1, 0, 3, 0, 0)])          # an erased page
            want, name = Status.NVM_EMPTY_PAGE, "NVM_EMPTY_PAGE"
        else:
            drv = NvmeDriver(m)
            buf = drv.pool.alloc(SECTOR)
            c = drv.submit(1, [(NvmOpc.WRITE, 0, 1, 0, buf.addr, 0, 5, 0, 0, 0, 0, 0)])[0]
            want, name = Status.NS_WRITE_PROTECTED | Status.DNR, "NS_WRITE_PROTECTED"   # read-only open
            assert c.status == want
        assert drv.admin(AdminOpc.GET_LOG_PAGE, cdw10=0x7F | (15 << 16)).status == Status.INVALID_LOG_PAGE | Status.DNR
        with _in_session(monkeypatch, drv, disk):
            out = ox("nvme", "error-log", "--disk", disk).stdout
            j = json.loads(ox("nvme", "error-log", "-o", "json", "-e", "3", "--disk", disk).stdout)
            smart = json.loads(ox("nvme", "smart-log", "-o", "json", "--disk", disk).stdout)
        drv.shutdown()
    finally:
        m.close()
    assert out.startswith(f"Error Log Entries for device:{disk} entries:64\n")
    entries = out.split(".................\n")
    newest, older = kv(entries[2]), kv(entries[4])
    assert older["status_field"] == f"{int(want) << 1:#x}({name})"
    assert older["sqid"] == "1" and newest["sqid"] == "0"
    assert newest["status_field"] == f"{(Status.INVALID_LOG_PAGE | Status.DNR) << 1:#x}(INVALID_LOG_PAGE)"
    assert newest["error_count"] == "2" and older["error_count"] == "1"
    errs = j["errors"]
    assert len(errs) == 3 and [e["error_count"] for e in errs] == [2, 1, 0]
    assert errs[1]["status_field"] >> 1 == want and errs[2]["status_field"] == 0
    assert smart["num_err_log_entries"] == 2


# ---------------------------------------------------------------------------- lnvm
def test_lnvm_list_and_info_tell_open_channel_disks_and_their_target(ox, tmp_path):
    p = str(tmp_path / "p.disk")
    a = fmt_disk(ox, str(tmp_path / "a.disk"), "appnvm")
    ox("format", "--disk", p, "--mode", "pblk", "--luns", "1-3", "--geometry", "2x2x16x16", "--yes")
    out = ox("nvme", "lnvm", "list", "--disk", p, "--disk", a).stdout.splitlines()
    assert out[0] == "Number of devices: 2"
    assert out[2].split("\t")[:3] == [f"{p:<12}", "open-channel", "1.2"]
    assert out[3].split("\t")[:3] == [f"{a:<12}", f"{'AppNVM':<12}", "-"]
    j = json.loads(ox("nvme", "lnvm", "list", "--disk", p, "--disk", a, "-o", "json").stdout)["devices"]
    assert [(d["lightnvm"], d["version"]) for d in j] == [(True, "1.2"), (False, None)]
    assert "pblk volume on LUNs 1-3" in j[0]["holds"]
    info = ox("nvme", "lnvm", "info", "--disk", p).stdout.splitlines()
    assert info[0] == f"LightNVM (1,2,0). 1 target(s) recorded in the media label of {p}."
    assert info[2].split("\t")[:2] == ["pblk", "1-3"]
    st = open_stack("pblk", p)                      # the first mount creates the instance
    st.close()
    t = json.loads(ox("nvme", "lnvm", "info", "-o", "json", "--disk", p).stdout)["targets"][0]
    lab = probe_label(p)
    assert t == dict(type="pblk", lun_begin=1, lun_end=3, uuid=bytes(lab.uuid).hex(),
                     capacity_bytes=lab.capacity_bytes) and lab.capacity_bytes > 0
    for cmd in (["info"], ["id-ns"], ["diag-bbtbl"]):
        res = ox("nvme", "lnvm", *cmd, "--disk", a, ok=False)
        assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "not a LightNVM device" in res.stderr


def test_lnvm_diag_bbtbl_reports_a_marked_block(ox, tmp_path):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), "pblk")
    ox("bbt", "mark", "grown", "1:1:0:5", "1:1:1:5", "--disk", disk)
    ox("bbt", "mark", "host", "1:1:0:9", "--disk", disk)
    out = ox("nvme", "lnvm", "diag-bbtbl", "--channel-id", "1", "--lun-id", "1", "--disk", disk).stdout
    assert out.splitlines()[0] == "LightNVM Bad Block Stats:" and out.rstrip().endswith("retrieve table.")
    t = kv(out)
    assert (t["verid"], t["tblks"], t["tgrown"], t["thresv"], t["tfact"]) == ("0x1", "32", "2", "1", "0")
    raw = ox("nvme", "lnvm", "diag-bbtbl", "-c", "1", "-l", "1", "-b", "--disk", disk).stdout_bytes
    assert len(raw) == 32 and raw[10] == raw[11] == 2 and raw[18] == 8 and raw.count(0) == 29
    j = json.loads(ox("nvme", "lnvm", "diag-bbtbl", "-c", "1", "-l", "1", "-o", "json", "--disk", disk).stdout)
    assert j["marked"] == [dict(blk=5, pl=0, state="grwn_bad"), dict(blk=5, pl=1, state="grwn_bad"),
                           dict(blk=9, pl=0, state="host")]
    assert kv(ox("nvme", "lnvm", "diag-bbtbl", "--disk", disk).stdout)["tgrown"] == "0"     # ch 0 lun 0
    res = ox("nvme", "lnvm", "diag-bbtbl", "-c", "2", "--disk", disk, ok=False)
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "out of bound" in res.stderr


# ---------------------------------------------------------------------------- reading, writing
@pytest.mark.parametrize("mode", MODES)
def test_reading_commands_leave_an_unclean_disk_byte_identical(ox, tmp_path, mode):
    disk = str(tmp_path / "ox.disk")
    st = open_stack(mode, disk, geometry=GEO)
    st.blockdev.write_sectors(0, pattern(40, 1))
    st.blockdev.flush()
    st.abandon()
    before = sha(disk)
    cmds = [["id-ctrl"], ["id-ns"], ["smart-log"], ["error-log"], ["get-log", "-i", "0xc0"]]
    cmds += [["lnvm", "list"], ["lnvm", "info"], ["lnvm", "id-ns"], ["lnvm", "diag-bbtbl"]] if mode == "pblk" else []
    for cmd in cmds:
        arg = ["--disk", disk]
        ox("nvme", *cmd, *arg)
    assert sha(disk) == before


def test_missing_disk_is_one_line_and_never_created(ox, tmp_path):
    disk = str(tmp_path / "nope.disk")
    for cmd in (["smart-log"], ["id-ctrl"], ["reset"], ["lnvm", "id-ns"], ["lnvm", "list"]):
        res = ox("nvme", *cmd, "--disk", disk, ok=False)
        assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "no such disk file" in res.stderr
    assert not os.path.exists(disk)


def test_reset_persists_an_appnvm_disk_a_crashed_session_left(ox, tmp_path):
    """A session writes and dies without a shutdown; `ox nvme reset` brings the device up
    (recovery), resets the controller (the device persists its map: a checkpoint) and
    stops it cleanly: the label records the clean stop, and the data is there."""
    disk = str(tmp_path / "ox.disk")
    data = pattern(64, 3)
    st = open_stack("appnvm", disk, geometry=GEO)
    st.blockdev.write_sectors(100, data)
    st.blockdev.flush()
    st.abandon()
    lab = probe_label(disk)
    assert lab.last_stop_clean == 0
    res = ox("nvme", "reset", "--disk", disk)
    assert res.stdout == f"{disk}: controller reset (CC.EN 1->0): media persisted\n"
    after = probe_label(disk)
    assert after.last_stop_clean == 1 and after.power_cycles == lab.power_cycles + 1
    assert after.unsafe_shutdowns == lab.unsafe_shutdowns
    st = open_stack("appnvm", disk, geometry=GEO)
    try:
        assert np.array_equal(st.blockdev.read_sectors(100, 64), data)
    finally:
        st.close()


def test_smart_log_piped_into_head_exits_quietly(tmp_path, ox):
    disk = fmt_disk(ox, str(tmp_path / "ox.disk"), "pblk")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(nvme_cmds.__file__)).rsplit("/oxhost", 1)[0])
    for cmd in ("smart-log", "error-log", "id-ctrl"):
        p = subprocess.run(["bash", "-c", f'set -o pipefail; "{sys.executable}" -m oxhost.cli nvme {cmd} '
                           f'--disk "{disk}" | head -1'], capture_output=True, text=True, env=env, timeout=60)
        assert p.returncode in (0, 141), (cmd, p.returncode, p.stderr)
        assert p.stderr == "" and p.stdout.count("\n") == 1
