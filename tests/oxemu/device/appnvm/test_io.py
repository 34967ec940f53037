"""AppNVM I/O commands through the bus: identify, read/write/flush/deallocate, and the
NVMe statuses of bad requests (never exceptions)."""
import io

import numpy as np
import pytest

from oxemu import Geometry, StoreError
from oxemu.wire import Cns, IdCtrl, IdNs, NvmOpc, Status

from .conftest import (
    DATA_XFER_ERROR,
    DNR,
    INVALID_FIELD,
    LBA_RANGE,
    SECTOR,
    Nvme,
    stamp,
    versions,
)


def test_identify_default_geometry_exports_pblks_capacity(appnvm_machine):
    n = Nvme(appnvm_machine(geometry=Geometry()))
    ns = IdNs.from_buffer_copy(n.drv.identify(Cns.NAMESPACE, 1))
    assert ns.nsze == ns.ncap == 838_656
    assert ns.nsze * SECTOR == 3_435_134_976
    assert ns.lbaf[ns.flbas & 0xF].ds == 12 and ns.vs[0] == 0 and ns.nsfeat & 1
    c = IdCtrl.from_buffer_copy(n.drv.identify(Cns.CONTROLLER))
    assert c.oncs & (1 << 2)                       # dataset management
    assert c.vwc == 1                              # volatile write cache: no power-loss protection
    assert n.drv.max_transfer == 1 << 20           # MDTS
    assert (n.drv.vendor, n.drv.device_id) == (0x1D1D, 0x1F1F)


def test_identify_capacity_is_configurable(appnvm_machine):
    m = appnvm_machine(appnvm_capacity=1000 * SECTOR)
    ns = IdNs.from_buffer_copy(Nvme(m).drv.identify(Cns.NAMESPACE, 1))
    assert ns.nsze == 1000


@pytest.mark.parametrize("capacity", [0, 4095, 10 ** 12])
def test_impossible_capacity_is_refused(appnvm_machine, capacity):
    with pytest.raises(ValueError):
        appnvm_machine(appnvm_capacity=capacity)


def test_formatted_disk_keeps_its_capacity(appnvm_machine, tmp_path):
    disk = str(tmp_path / "ox.disk")
    m = appnvm_machine(volt=0, disk=disk, appnvm_capacity=2000 * SECTOR)
    m.close()
    m = appnvm_machine(volt=0, disk=disk)                 # None: what the media says
    assert m.device.mode.nlbas == 2000
    m.close()
    with pytest.raises(StoreError, match="formatted with a capacity"):
        appnvm_machine(volt=0, disk=disk, appnvm_capacity=3000 * SECTOR)
    m = appnvm_machine(volt=0, disk=disk)                 # the refusal left the file usable
    assert m.device.mode.nlbas == 2000


def test_write_read_roundtrip_of_every_shape(nvme):
    ref = {}
    for slba, n in [(0, 1), (1, 7), (8, 8), (16, 3), (19, 21), (100, 256), (5000, 1), (6527, 1)]:
        data = stamp(np.arange(slba, slba + n), 1)
        assert nvme.write(slba, data) == 0
        ref.update({lba: 1 for lba in range(slba, slba + n)})
    for slba, n in [(0, 40), (90, 300 - 90), (5000, 1), (6520, 8)]:
        st, data = nvme.read(slba, n)
        assert st == 0
        want = [ref.get(lba, 0) for lba in range(slba, slba + n)]
        assert versions(data, np.arange(slba, slba + n)).tolist() == want


def test_never_written_sectors_read_as_zeros(nvme):
    st, data = nvme.read(1234, 9)
    assert st == 0 and not data.any()


def test_buffered_writes_are_read_back_before_any_flush(nvme):
    assert nvme.write(10, stamp([10, 11, 12], 1)) == 0        # less than a unit: stays in the buffer
    assert nvme.ops.wbuf.n == 3
    assert nvme.write(11, stamp([11], 2)) == 0                # rewritten while buffered
    assert versions(nvme.read(10, 3)[1], [10, 11, 12]).tolist() == [1, 2, 1]
    assert nvme.flush() == 0
    assert nvme.ops.wbuf.n == 0
    assert versions(nvme.read(10, 3)[1], [10, 11, 12]).tolist() == [1, 2, 1]


def test_fua_write_reaches_media_before_completion(nvme):
    assert nvme.write(42, stamp([42], 1), fua=True) == 0
    assert nvme.ops.wbuf.n == 0
    assert nvme.ops.map.l2p[42] < 0xFFFF_FF00


@pytest.mark.parametrize("slba,n", [(6528, 1), (6527, 2), (1 << 40, 1), (6400, 200)])
def test_lba_out_of_range_is_status_0x80(nvme, slba, n):
    assert nvme.cmd(NvmOpc.WRITE, slba, n) == LBA_RANGE
    assert nvme.cmd(NvmOpc.READ, slba, n) == LBA_RANGE
    assert LBA_RANGE & 0xFF == Status.LBA_RANGE


def test_transfer_over_mdts_is_invalid_field(nvme):
    assert nvme.cmd(NvmOpc.WRITE, 0, 257) == INVALID_FIELD
    assert nvme.cmd(NvmOpc.READ, 0, 257) == INVALID_FIELD
    assert nvme.cmd(NvmOpc.WRITE, 0, 256) == 0             # exactly MDTS is fine


def test_bad_prps_are_data_transfer_errors_and_the_device_goes_on(nvme):
    ram = nvme.m.ram.size
    assert nvme.cmd(NvmOpc.WRITE, 0, 1, prp=(ram + 4096, 0)) == DATA_XFER_ERROR
    assert nvme.cmd(NvmOpc.READ, 0, 2, prp=(ram - 4096, ram)) == DATA_XFER_ERROR
    assert nvme.dsm([(0, 1)]) == 0
    assert nvme.write(0, stamp([0], 3)) == 0
    assert versions(nvme.read(0)[1], [0]).tolist() == [3]


def test_unknown_opcodes_and_namespaces_are_refused(nvme):
    assert nvme.cmd(NvmOpc.PH_WRITE, 0, 1) == Status.INVALID_OPCODE | DNR
    assert nvme.cmd(0x05, 0, 1) == Status.INVALID_OPCODE | DNR
    assert nvme.cmd(NvmOpc.READ, 0, 1, nsid=2) == Status.INVALID_NS | DNR


def test_deallocate_reads_zeros_from_media_and_buffer(nvme):
    nvme.write_stamped(np.arange(0, 64), 1)                    # on media
    assert nvme.write(64, stamp([64, 65], 1)) == 0             # still buffered
    mapped = nvme.ops.map.mapped_count()
    assert nvme.dsm([(3, 5), (40, 30)]) == 0
    v = nvme.read_versions(0, 70)
    want = np.ones(70, dtype=np.int64)
    want[3:8] = 0
    want[40:70] = 0
    assert v.tolist() == want.tolist()
    assert nvme.ops.map.mapped_count() == mapped - 5 - 26      # 66..69 were never written
    assert nvme.flush() == 0
    assert nvme.read_versions(0, 70).tolist() == want.tolist()


def test_dsm_without_deallocate_attribute_changes_nothing(nvme):
    nvme.write_stamped([5], 1)
    assert nvme.dsm([(5, 1)], ad=False) == 0
    assert nvme.read_versions(5, 1).tolist() == [1]


def test_dsm_out_of_range_fails_whole_and_deallocates_nothing(nvme):
    nvme.write_stamped([0, 1], 1)
    assert nvme.dsm([(0, 1), (6500, 100)]) == LBA_RANGE
    assert nvme.read_versions(0, 2).tolist() == [1, 1]


def test_whole_device_deallocate_then_rewrite(nvme):
    nvme.write_stamped(np.arange(0, 6528, 97), 1)
    assert nvme.dsm([(0, nvme.nlbas)]) == 0
    assert nvme.ops.map.mapped_count() == 0
    nvme.write_stamped([97], 2)
    v = nvme.read_versions()
    assert v[97] == 2 and np.count_nonzero(v) == 1


def test_debug_trace_shows_appnvm_commands(appnvm_machine):
    out = io.StringIO()
    n = Nvme(appnvm_machine(debug=1, trace_stream=out))
    assert n.write(0, stamp(np.arange(8), 1)) == 0
    text = out.getvalue()
    assert "IO CMD 0x01, nsid: 1" in text and "Number of sectors: 8" in text
    assert "MMGR_CMD type: 0x3 submitted to VOLT." in text
    assert "completed. Status: 0" in text
