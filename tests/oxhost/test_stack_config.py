"""One configuration for both stacks and the device, through open_stack and the CLI: the
capacity from ftl.op, the policies and thresholds each FTL gets, the media label's size
check, and one error line for a bad configuration."""
import subprocess
import sys

import numpy as np
import pytest

from oxhost.config import Config
from oxhost.stack import StackError, open_stack

SMALL = ["geometry.nchannels=2", "geometry.nluns=2", "geometry.nblocks=16", "geometry.npages=32"]


def _cfg(*sets) -> Config:
    return Config.load(None, SMALL + list(sets))


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_both_stacks_export_the_capacity_of_ftl_op(mode):
    cfg = _cfg("ftl.op=0.3", "ftl.gc_policy=cost-benefit", "ftl.gc_background=0.25", "ftl.gc_foreground=2",
               "nand.t_prog_msb_ns=900000")
    with open_stack(mode=mode, volatile=True, config=cfg) as st:
        assert st.blockdev.size == cfg.exported_sectors() * 4096
        assert st.geometry == cfg.to_geometry()
        assert st.machine.device.volt.timing.nand.prog_ns(1) == 900_000
        assert st.info()["config"]["ftl"]["op"] == 0.3
        if mode == "pblk":
            p = st.blockdev
            assert p.gc.policy == "cost-benefit"
            assert (p.rl.high, p.rl.low, p.rl.rsv) == cfg.pblk_rl(p.rl.total, p.lm.reserve_secs // 2)
        else:
            ftl = st.machine.stats()["ftl"]
            assert ftl["gc_policy"] == "cost-benefit"
            assert ftl["gc_low_blocks"] == ftl["gc_reserve_blocks"] + 1       # floor(0.25 x 4 LUNs)


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_a_volume_keeps_its_size_unless_the_config_asks_another(tmp_path, mode):
    disk = str(tmp_path / "ox.disk")
    with open_stack(mode=mode, disk=disk, config=_cfg("ftl.op=0.3")) as st:
        size = st.blockdev.size
        st.blockdev.write(size - 4096, np.full(4096, 7, np.uint8))
    with open_stack(mode=mode, disk=disk) as st:                  # no op asked: the label's size
        assert st.blockdev.size == size
        assert (st.blockdev.read(size - 4096, 4096) == 7).all()
    with pytest.raises(StackError, match=r"not the .* the configuration asks for \(ftl.op\).*ox format"):
        open_stack(mode=mode, disk=disk, config=_cfg("ftl.op=0.2"))
    with open_stack(mode=mode, disk=disk, config=_cfg("ftl.op=0.3", "ftl.gc_policy=fifo")) as st:
        assert st.blockdev.size == size


def test_geometry_from_the_config_and_from_the_options_must_agree(tmp_path):
    from oxemu import Geometry
    with pytest.raises(StackError, match="differ"):
        open_stack(volatile=True, geometry=Geometry.small(), config=_cfg())


def test_ox_mount_refuses_a_bad_config_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "mount", str(tmp_path / "mnt"), "--volatile",
                        "--set", "appnvm.wear_leveling=static"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stderr.strip() == ("ox: error: config: appnvm.wear_leveling: 'static' is not one of none, dynamic")


def test_ox_torture_runs_with_a_config(tmp_path):
    cfg = tmp_path / "ox.toml"
    cfg.write_text("[ftl]\ngc_policy = \"d-choice\"\nop = 0.25\n[appnvm]\nwear_leveling = \"dynamic\"\n")
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", "--cuts", "2", "--no-progress",
                        "--config", str(cfg), "--dir", str(tmp_path / "w")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert "0 violations" in p.stdout
