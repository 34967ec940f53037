"""oxhost.nvme.admin: the admin commands nvme-cli issues by hand, over the real bus."""
import numpy as np
import pytest

from oxemu import Geometry, Machine, probe_label
from oxemu.wire import CC, BlockState, LogPage, NvmOpc, Reg, Status
from oxhost.driver import NvmeDriver
from oxhost.lightnvm import Addr, Device
from oxhost.nvme.admin import (AdminStatusError, bad_block_table, error_log, get_log, identify_controller,
                               nvm_identity, reset_controller, smart_log, u128)

GEO = Geometry.small()


def test_get_log_reads_more_than_a_page_and_refuses_what_numd_cannot_say(make_machine):
    drv = NvmeDriver(make_machine())
    raw = get_log(drv, LogPage.ERROR, 3 * 4096 + 6)              # PRP list, zero-padded past the log
    assert len(raw) == 3 * 4096 + 6 and not any(raw)
    with pytest.raises(ValueError):
        get_log(drv, LogPage.SMART, 16 * 1024 + 4)
    with pytest.raises(ValueError):
        get_log(drv, 256, 512)
    with pytest.raises(AdminStatusError, match="INVALID_LOG_PAGE") as e:
        get_log(drv, 0x7F, 512)
    assert e.value.status == Status.INVALID_LOG_PAGE | Status.DNR
    first = error_log(drv, 2)
    assert first[0].error_count == 1 and first[0].status_field >> 1 == e.value.status and first[0].sqid == 0
    assert first[1].error_count == 0


def test_bad_block_table_of_a_lun_is_the_one_liblightnvm_reads(make_machine):
    m = make_machine()
    dev = Device.open(m)
    dev.bbt_mark([Addr(1, 0, 1, 3)], BlockState.GRWN_BAD)
    ident = nvm_identity(dev.driver)
    h, table = bad_block_table(dev.driver, ident, 1, 0)
    assert (h.tblks, h.tgrown, h.verid) == (GEO.nblocks * GEO.nplanes, 1, 1)
    assert np.array_equal(table, dev.bbt_get(Addr(1, 0)).blks) and table[3 * 2 + 1] == BlockState.GRWN_BAD
    assert not bad_block_table(dev.driver, ident, 0, 1)[1].any()


def test_nvm_identity_of_an_appnvm_device_is_an_invalid_opcode(make_machine):
    drv = NvmeDriver(make_machine(lnvm=0))
    with pytest.raises(AdminStatusError, match="INVALID_OPCODE"):
        nvm_identity(drv)


@pytest.mark.parametrize("lnvm", [1, 0], ids=["open-channel", "appnvm"])
def test_reset_controller_persists_the_session_to_the_disk_file_while_the_device_runs(tmp_path, lnvm):
    """CC.EN 1 -> 0 flushes the media file: the label's lifetime counters of this power-on
    are on disk before the device stops, and the controller comes back up."""
    path = str(tmp_path / "ox.disk")
    with Machine(lnvm=lnvm, volt=0, disk=path, geometry=GEO) as m:
        if lnvm:
            dev = Device.open(m)
            dev.addr_erase([Addr(0, 0, pl, 2) for pl in range(2)])
            page = [Addr(0, 0, pl, 2, 0, s) for pl in range(2) for s in range(4)]
            dev.addr_write(page, np.full(8 * 4096, 7, np.uint8))
            drv = dev.driver
        else:
            drv = NvmeDriver(m)
            buf = drv.pool.alloc(8 * 4096)
            assert drv.submit(1, [(NvmOpc.WRITE, 0, 1, 0, *drv.prps(1, 0, buf.addr, 8 * 4096), 0, 0, 7,
                                   0, 0, 0)])[0].status == 0
        assert probe_label(path).data_units_written == 0                 # counted, not yet on disk
        drv = reset_controller(drv)
        assert probe_label(path).data_units_written == 1 and probe_label(path).host_write_cmds == 1
        assert m.reg_read32(Reg.CC) & CC.EN
        assert identify_controller(drv).vid == 0x1D1D and u128(smart_log(drv).host_writes) == 1
        drv.shutdown()
    assert probe_label(path).last_stop_clean == 1
