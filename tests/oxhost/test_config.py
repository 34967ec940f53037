"""oxhost.config: defaults equal today's constants, one-line errors naming the key, TOML
round trips and --set overrides."""
import dataclasses
import json
import math

import pytest

from oxemu import Geometry, appnvm_exported_sectors
from oxemu.device.appnvm import provisioning
from oxemu.device.appnvm.mapping import Addr
from oxemu.device.identity import nvm_identity
from oxemu.volt import NandTiming
from oxhost.config import (GC_POLICIES, AppnvmConfig, Config, ConfigError, FtlConfig, GeometryConfig,
                           HostConfig, NandConfig)
from oxhost.lightnvm.geo import Geo
from oxhost.pblk import rl
from oxhost.pblk.lines import LineGeometry
from oxhost.pblk.params import OVER_PROVISION_PCT
from oxhost.pblk.writebuffer import NR_ENTRIES

GEOMETRIES = [Geometry(), Geometry.small(), Geometry(nchannels=2, nluns=2, nblocks=32, npages=32),
              Geometry(nchannels=3, nluns=1, nblocks=16, npages=8, nplanes=1, nsectors=2)]


# ---------------------------------------------------------------- defaults

def test_config_default_geometry_is_the_device_default():
    assert Config.default().to_geometry() == Geometry()
    assert Config.default().geometry.to_geometry() == Geometry()


def test_config_default_nand_is_todays_nand_timing():
    assert Config.default().nand.to_nand_timing() == NandTiming()
    assert Config.default().to_nand_timing() == NandTiming()


def test_config_default_op_is_pblk_over_provisioning():
    assert Config.default().ftl.op * 100 == OVER_PROVISION_PCT


def test_config_default_pblk_keys_equal_pblk_constants():
    cfg = Config.default()
    assert cfg.pblk.write_buffer_entries == NR_ENTRIES
    assert cfg.pblk.rl_low_div == rl.PBLK_USER_LOW_THRS
    assert 1 / cfg.ftl.gc_background == rl.PBLK_USER_HIGH_THRS
    assert cfg.ftl.gc_foreground == rl.PBLK_GC_RSV_LINE
    assert cfg.pblk.durable_discard is True


def test_config_default_gc_policy_is_greedy():
    assert Config.default().ftl.gc_policy == "greedy"


@pytest.mark.parametrize("total,per_line", [(0, 0), (100, 8), (819 * 1024, 32 * 1024), (12345, 67),
                                            (26 * 4096, 4096)])
def test_config_pblk_rl_defaults_equal_rate_limiter_configure(total, per_line):
    limiter = rl.RateLimiter(2048)
    limiter.configure(total, per_line)
    assert Config.default().pblk_rl(total, per_line) == (limiter.high, limiter.low, limiter.rsv)


def test_config_pblk_rl_follows_gc_background_and_foreground():
    cfg = Config.load(None, ["ftl.gc_background=0.25", "ftl.gc_foreground=2", "pblk.rl_low_div=5"])
    assert cfg.pblk_rl(10_000, 100) == (2500, 2000, 200)
    assert cfg.with_overrides(["ftl.gc_background=0"]).pblk_rl(10_000, 100)[0] == 400


@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: g.describe())
def test_config_default_appnvm_thresholds_match_provisioning(geo):
    cfg = Config.default().with_overrides([f"geometry.{k}={getattr(geo, k)}" for k in GeometryConfig.keys()])
    addr = Addr(geo)
    prov = provisioning.plan(addr)
    assert cfg.appnvm.write_buffer_units_per_lun == provisioning.WRITE_BUFFER_UNITS_PER_LUN
    assert provisioning.plan(addr, params=cfg.appnvm_params()).ckpt_every == prov.ckpt_every
    assert cfg.appnvm_capacity_bytes() == prov.nlbas * geo.sector_nbytes
    # the FtlConfig docstring's definitions for AppNVM, at the defaults
    assert prov.reserve == prov.gc_floor + cfg.ftl.gc_foreground
    assert prov.gc_low == prov.reserve + max(1, math.floor(cfg.ftl.gc_background * addr.total_luns))


def test_config_default_exports_the_capacity_of_the_spec_for_both_stacks():
    assert Config.default().exported_sectors() * 4096 == 3_435_134_976
    assert Config.default().appnvm_capacity_bytes() == 3_435_134_976


@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: g.describe())
def test_config_exported_sectors_is_the_pblk_targets_capacity_for_any_lun_range(geo):
    total = geo.total_luns
    host_geo = Geo.from_identity(nvm_identity(geo, NandTiming()))     # what pblk learns over the bus
    cfg = Config.load(None, ["ftl.op=0.3"])
    for begin, end in {(0, total - 1), (0, 0), (total - 1, total - 1), (0, total // 2)}:
        lg = LineGeometry(host_geo, begin, end, op=0.3)
        assert cfg.exported_sectors(luns=end - begin + 1, geometry=geo) == lg.capacity_sectors


@pytest.mark.parametrize("geo", GEOMETRIES, ids=lambda g: g.describe())
def test_config_appnvm_capacity_is_appnvms_rule_at_ftl_op(geo):
    for op in (0.2, 0.3):
        cfg = Config.load(None, [f"ftl.op={op}"])
        assert cfg.appnvm_capacity_bytes(geo) == appnvm_exported_sectors(geo, op) * 4096
        assert cfg.appnvm_capacity_bytes(geo) == cfg.exported_sectors(geometry=geo) * 4096   # a fair compare


def test_config_host_costs_are_documented_defaults():
    host = Config.default().host
    assert (host.write_buffer_copy_ns, host.gc_move_ns, host.submit_ns, host.complete_ns) == (300, 400, 1000, 1000)
    assert host.enabled
    assert not HostConfig(write_buffer_copy_ns=0, gc_move_ns=0, submit_ns=0, complete_ns=0).enabled


# ---------------------------------------------------------------- errors

def _error(sets, path=None) -> str:
    with pytest.raises(ConfigError) as info:
        Config.load(path, sets)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("config: ")
    return msg


@pytest.mark.parametrize("item,key,words", [
    ("ftl.gc_policy=gredy", "ftl.gc_policy",
     "'gredy' is not one of greedy, cost-benefit, fifo, random, d-choice"),
    ("ftl.op=0.95", "ftl.op", "must be in [0.01, 0.9], got 0.95"),
    ("ftl.op=0", "ftl.op", "must be in [0.01, 0.9], got 0"),
    ("ftl.op=fast", "ftl.op", "expected a number, got 'fast' (a string)"),
    ("ftl.op=true", "ftl.op", "expected a number, got true (a boolean)"),
    ("nand.t_prog_ns=-5", "nand.t_prog_ns", "must be >= 0, got -5"),
    ("nand.t_read_ns=40e3", "nand.t_read_ns", "expected an integer, got 40000.0 (a float)"),
    ("nand.channel_mb_s=0", "nand.channel_mb_s", "must be >= 1"),
    ("geometry.nplanes=3", "geometry.nplanes", "must be 1, 2 or 4, got 3"),
    ("geometry.nchannels=0", "geometry.nchannels", "must be in [1, 255], got 0"),
    ("geometry.nsectors=16", "geometry.nsectors", "must be in [1, 15], got 16"),
    ("geometry.nblocks=2", "ftl.op", "leaves pblk 13152 spare data sectors on 2 lines of 32688"),
    ("ftl.gc_foreground=9", "ftl.gc_foreground", "fewer than the 441288 its GC needs"),
    ("ftl.gc_foreground=0", "ftl.gc_foreground", "must be >= 1"),
    ("ftl.gc_background=1.5", "ftl.gc_background", "must be in [0, 0.9]"),
    ("ftl.gc_background=nan", "ftl.gc_background", "finite"),
    ("pblk.durable_discard=1", "pblk.durable_discard", "expected true or false, got 1 (an integer)"),
    ("pblk.write_buffer_entries=4", "pblk.write_buffer_entries", "do not hold one write unit of 8 sectors"),
    ("appnvm.wear_leveling=static", "appnvm.wear_leveling", "'static' is not one of none, dynamic"),
    ("appnvm.capacity_bytes=1000", "appnvm.capacity_bytes", "multiple of 4096"),
    ("appnvm.capacity_bytes=8589934592", "appnvm.capacity_bytes", "more than the 4294967296 bytes"),
    ("host.submit_ns=-1", "host.submit_ns", "must be >= 0"),
])
def test_config_bad_value_is_one_line_naming_the_key(item, key, words):
    msg = _error([item])
    assert msg.startswith(f"config: {key}: ")
    assert words in msg


def test_config_set_unknown_key_names_the_known_keys_of_its_section():
    msg = _error(["ftl.gc_polcy=greedy"])
    assert msg == ("config: ftl.gc_polcy: unknown key (ftl has: op, gc_policy, gc_d, gc_seed, "
                   "gc_background, gc_foreground)")


def test_config_set_unknown_section_names_the_sections():
    assert _error(["flt.op=0.2"]) == ("config: flt.op: unknown section 'flt' (known: geometry, nand, "
                                      "ftl, pblk, appnvm, host, zns)")


@pytest.mark.parametrize("item", ["ftl.op", "op=0.2", "=3", "ftl.=1"])
def test_config_set_without_section_key_value_is_refused(item):
    assert "section.key=value" in _error([item])


def test_config_file_errors_name_the_file_and_the_key(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('[ftl]\ngc_policy = "gredy"\n')
    assert _error([], p) == (f"config: {p}: ftl.gc_policy: 'gredy' is not one of greedy, cost-benefit, "
                             "fifo, random, d-choice")
    p.write_text("[nand]\nt_prog_ns = -5\n")
    assert _error([], p) == f"config: {p}: nand.t_prog_ns: must be >= 0, got -5"
    p.write_text("[ftl]\nop = 0.2\nsurprise = 1\n")
    assert _error([], p).startswith(f"config: {p}: ftl.surprise: unknown key (ftl has: op, ")
    p.write_text("[garbage]\nx = 1\n")
    assert _error([], p).startswith(f"config: {p}: garbage: unknown section 'garbage'")
    p.write_text("op = 0.2\n")
    assert _error([], p).startswith(f"config: {p}: op: a key outside any [section]")


def test_config_value_fixed_by_set_is_not_blamed_on_the_file(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('[ftl]\ngc_policy = "gredy"\n')
    assert Config.load(p, ["ftl.gc_policy=fifo"]).ftl.gc_policy == "fifo"
    p.write_text('[ftl]\nop = 0.3\n')
    assert _error(["ftl.gc_policy=gredy"], p).startswith("config: ftl.gc_policy: ")


def test_config_invalid_toml_and_missing_file_are_one_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[ftl]\nop = = 3\n")
    msg = _error([], p)
    assert msg.startswith(f"config: {p}: not valid TOML: ") and "line 2" in msg
    msg = _error([], tmp_path / "absent.toml")
    assert msg.startswith(f"config: {tmp_path / 'absent.toml'}: cannot read it")


def test_config_sections_validate_when_built_directly():
    with pytest.raises(ConfigError, match=r"^config: ftl\.op: must be in"):
        FtlConfig(op=2.0)
    with pytest.raises(ConfigError, match=r"^config: appnvm\.checkpoint_interval_blocks: must be >= 0"):
        AppnvmConfig(checkpoint_interval_blocks=-1)
    with pytest.raises(ConfigError, match=r"^config: ftl: expected a FtlConfig"):
        Config(ftl={"op": 0.2})


# ---------------------------------------------------------------- loading and overrides

@pytest.mark.parametrize("item,section,key,value", [
    ("ftl.gc_policy=cost-benefit", "ftl", "gc_policy", "cost-benefit"),
    ("ftl.gc_policy=d-choice", "ftl", "gc_policy", "d-choice"),
    ('ftl.gc_policy="fifo"', "ftl", "gc_policy", "fifo"),
    ("appnvm.wear_leveling=dynamic", "appnvm", "wear_leveling", "dynamic"),
    ("ftl.op=0.07", "ftl", "op", 0.07),
    ("ftl.gc_background=0", "ftl", "gc_background", 0.0),
    ("pblk.write_buffer_entries=4_096", "pblk", "write_buffer_entries", 4096),
    ("pblk.durable_discard=false", "pblk", "durable_discard", False),
    (" nand.t_prog_ns = 185000 ", "nand", "t_prog_ns", 185000),
])
def test_config_set_parses_toml_scalars_and_bare_words(item, section, key, value):
    got = getattr(getattr(Config.load(None, [item]), section), key)
    assert got == value and type(got) is type(value)


def test_config_layers_defaults_then_file_then_sets_in_order(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text("[ftl]\nop = 0.3\ngc_policy = \"fifo\"\n[geometry]\nnblocks = 64\n")
    cfg = Config.load(str(p), ["ftl.op=0.25", "ftl.op=0.28"])
    assert (cfg.ftl.op, cfg.ftl.gc_policy, cfg.geometry.nblocks, cfg.geometry.npages) == (0.28, "fifo", 64, 128)


def test_config_with_overrides_returns_a_new_config():
    base = Config.default()
    new = base.with_overrides(["ftl.gc_policy=random", "ftl.gc_seed=7"])
    assert (new.ftl.gc_policy, new.ftl.gc_seed) == ("random", 7)
    assert base == Config.default()
    assert new.with_overrides([]) == new
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.ftl.op = 0.5


def test_config_toml_round_trips(tmp_path):
    cfg = Config.load(None, ["ftl.op=0.07", "ftl.gc_policy=d-choice", "ftl.gc_d=8", "ftl.gc_background=0",
                             "nand.t_read_msb_ns=90000", "pblk.durable_discard=false",
                             "appnvm.wear_leveling=dynamic", "appnvm.capacity_bytes=1073741824",
                             "geometry.nblocks=64", "host.submit_ns=0"])
    for comments in (True, False):
        p = tmp_path / f"cfg{comments}.toml"
        p.write_text(cfg.to_toml(comments=comments))
        assert Config.load(p, []) == cfg
    p.write_text(Config.default().to_toml())
    assert Config.load(p) == Config.default()


def test_config_to_dict_has_every_key_and_is_json():
    d = Config.default().to_dict()
    assert list(d) == ["geometry", "nand", "ftl", "pblk", "appnvm", "host", "zns"]
    assert d["ftl"] == {"op": 0.2, "gc_policy": "greedy", "gc_d": 4, "gc_seed": 0, "gc_background": 0.125,
                        "gc_foreground": 1}
    assert Config.from_dict(json.loads(json.dumps(d))) == Config.default()


def test_config_from_dict_accepts_partial_sections_and_ints_for_floats():
    cfg = Config.from_dict({"ftl": {"op": 0.25, "gc_background": 0}})
    assert cfg.ftl.gc_background == 0.0 and type(cfg.ftl.gc_background) is float
    assert cfg.nand == NandConfig()


def test_config_policies_are_the_documented_five():
    assert GC_POLICIES == ("greedy", "cost-benefit", "fifo", "random", "d-choice")
    for p in GC_POLICIES:
        assert Config.load(None, [f"ftl.gc_policy={p}"]).ftl.gc_policy == p


# ---------------------------------------------------------------- nand and appnvm details

def test_nand_page_types_alternate_lsb_msb():
    nand = NandConfig(t_read_lsb_ns=30_000, t_read_msb_ns=70_000, t_prog_lsb_ns=150_000, t_prog_msb_ns=600_000)
    assert [nand.page_type(p) for p in range(4)] == ["lsb", "msb", "lsb", "msb"]
    assert [nand.read_ns(p) for p in range(3)] == [30_000, 70_000, 30_000]
    assert [nand.prog_ns(p) for p in range(3)] == [150_000, 600_000, 150_000]
    assert nand.mlc
    t = nand.to_nand_timing()
    assert (t.t_read_ns, t.t_read_max_ns, t.t_prog_ns, t.t_prog_max_ns) == (40_000, 70_000, 200_000, 600_000)


def test_nand_zero_page_type_time_means_the_plain_value():
    nand = NandConfig(t_prog_msb_ns=500_000)
    assert (nand.prog_ns(0), nand.prog_ns(1), nand.read_ns(0), nand.read_ns(1)) == (200_000, 500_000, 40_000, 40_000)
    assert not NandConfig().mlc


def test_nand_timing_follows_the_plain_keys():
    t = Config.load(None, ["nand.t_read_ns=36000", "nand.t_prog_ns=185000", "nand.t_erase_ns=1000000",
                           "nand.channel_mb_s=400"]).nand.to_nand_timing()
    assert t == NandTiming(t_read_ns=36000, t_read_max_ns=54000, t_prog_ns=185000, t_prog_max_ns=277500,
                           t_erase_ns=1000000, t_erase_max_ns=1500000, channel_bytes_per_s=400_000_000)


def test_appnvm_capacity_and_checkpoint_overrides():
    cfg = Config.load(None, ["appnvm.capacity_bytes=1073741824", "appnvm.checkpoint_interval_blocks=16"])
    assert cfg.appnvm_capacity_bytes() == 1 << 30
    assert cfg.appnvm_params().checkpoint_interval_blocks == 16
    assert Config.load(None, ["ftl.op=0.5"]).appnvm_capacity_bytes() == 512 * 4 << 20
