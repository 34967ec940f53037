"""Power-cut campaigns through the real stacks (in process, small geometry): both FTLs keep
every flushed sector across cuts anywhere, and keep their free space."""
import json
import subprocess
import sys

import pytest

from oxhost.torture import Config, ModeCampaign


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_campaign_of_cuts_finds_no_violation_and_keeps_free_space(mode, tmp_path):
    cfg = Config(modes=(mode,), cuts=12, seed=3)
    rep = ModeCampaign(mode, cfg, str(tmp_path / "t.disk")).run()
    assert rep.violations == []
    assert rep.cuts == 12 and rep.sectors_verified > 12 * 6000
    assert rep.final_overwrite == "ok"


def test_campaign_with_media_faults_mixed_in(tmp_path):
    cfg = Config(modes=("pblk",), cuts=8, seed=5, faults=("program", "read", "bad"))
    rep = ModeCampaign("pblk", cfg, str(tmp_path / "t.disk")).run()
    assert rep.violations == []
    assert rep.final_overwrite in ("ok", "skipped: the volume is read-only")


def test_ox_torture_quick_reports_zero_violations_for_both_modes(tmp_path):
    """The CI run of the product command: JSON per mode with cuts and violations."""
    out = tmp_path / "torture.json"
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", "--quick", "--mode", "both",
                        "--no-progress", "--json", str(out), "--dir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(out.read_text())
    for mode in ("pblk", "appnvm"):
        assert doc[mode]["cuts"] == 40 and doc[mode]["violations"] == []
        assert doc[mode]["final_overwrite"] == "ok"
    lines = [ln for ln in p.stdout.splitlines() if "cuts," in ln]
    assert len(lines) == 2 and all("0 violations" in ln and "slowest recovery" in ln for ln in lines)
