"""The zoned FTL through a power-cut campaign (oxhost.torture, the engine of `ox torture`):
cuts anywhere, inside recovery and right at zone resets; not one flushed sector lost, and
the whole volume overwritten once more at the end."""
from oxhost.torture import Config, campaign, run


def test_zoned_ftl_survives_a_short_power_cut_campaign_with_no_violation(tmp_path, monkeypatch):
    monkeypatch.setitem(campaign.MODE_IDS, "zoned", 3)       # `ox torture` names stacks by mode string
    rep = run(Config(modes=("zoned",), cuts=20, seed=5, workdir=str(tmp_path)), progress=False,
              echo=lambda *a: None)["zoned"]
    assert rep["violations"] == [] and rep["final_overwrite"] == "ok" and rep["read_only"] is None
    assert rep["cuts"] == 20 and rep["recovery_cuts"] and rep["targeted_cuts"]
    assert rep["sectors_verified"] > 20 * 5000
