"""Power-cut campaigns through the real stacks (in process, small geometry): both FTLs keep
every flushed sector across cuts anywhere, and keep their free space; permanent media
faults are spent within the spare blocks, so the device stays writable; a campaign that
falls short says so."""
import pytest

from oxhost.torture import Config, ModeCampaign


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_campaign_of_cuts_finds_no_violation_and_keeps_free_space(mode, tmp_path):
    cfg = Config(modes=(mode,), cuts=12, seed=3)
    rep = ModeCampaign(mode, cfg, str(tmp_path / "t.disk")).run()
    assert rep.violations == []
    assert rep.cuts == 12 and rep.sectors_verified > 12 * 6000
    assert rep.rounds == 12 and rep.clean_stops == 0          # every round ends in its cut
    assert rep.final_overwrite == "ok" and rep.problems == [] and not rep.failed


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_permanent_faults_stay_within_half_the_spares_and_the_device_stays_writable(mode, tmp_path):
    cfg = Config(modes=(mode,), cuts=12, seed=5, faults=("program", "erase", "read"))
    rep = ModeCampaign(mode, cfg, str(tmp_path / "t.disk")).run()
    assert rep.violations == []
    assert rep.spare_blocks >= 4 and rep.fault_budget == (rep.spare_blocks + 1) // 2
    assert 1 <= rep.permanent_faults <= rep.fault_budget
    assert 0 <= rep.blocks_retired <= rep.permanent_faults
    assert rep.read_only_round is None and rep.final_overwrite == "ok"
    assert rep.cuts == 12 and rep.problems == []
    assert "blocks retired by" in rep.summary() and "writable to the end" in rep.summary()


def test_campaign_with_factory_bad_blocks_and_read_errors_mixed_in(tmp_path):
    cfg = Config(modes=("pblk",), cuts=8, seed=5, faults=("program", "read", "bad"))
    rep = ModeCampaign("pblk", cfg, str(tmp_path / "t.disk")).run()
    assert rep.violations == []
    assert rep.final_overwrite == "ok" and not rep.failed


def test_unbudgeted_faults_wear_the_device_out_and_the_campaign_says_so(tmp_path):
    """Without the budget the fault rates use up pblk's spares within a few rounds: the
    campaign is incomplete -- unless a read-only device is the point of the run."""
    cfg = Config(modes=("pblk",), cuts=10, seed=11, faults=("program", "erase"), fault_budget=False)
    rep = ModeCampaign("pblk", cfg, str(tmp_path / "a.disk")).run()
    assert rep.violations == []
    assert rep.read_only_round is not None and rep.read_only_round < rep.rounds - rep.rounds // 10
    assert rep.fault_budget is None and rep.permanent_faults > rep.spare_blocks // 2
    assert rep.failed and any("read-only" in p for p in rep.problems)
    assert "INCOMPLETE" in rep.summary() and "unbudgeted" in rep.summary()
    cfg.allow_read_only = True
    rep = ModeCampaign("pblk", cfg, str(tmp_path / "b.disk")).run()
    assert rep.accepted and not rep.failed and "accepted" in rep.summary()


def test_a_replay_runs_the_same_first_rounds(tmp_path):
    cfg = Config(modes=("appnvm",), cuts=6, seed=4, faults=("program", "erase"))
    whole = ModeCampaign("appnvm", cfg, str(tmp_path / "a.disk")).run()
    cfg.until_round = 3
    part = ModeCampaign("appnvm", cfg, str(tmp_path / "b.disk")).run()
    assert part.rounds == 3 and part.problems == []                # a replay is not short
    assert part.history == whole.history[:3]                        # same plans, cuts and faults
    assert "--cuts 6 --until-round 3" in cfg.replay_command("appnvm", 3)
