"""`ox torture` as a user runs it: summary lines, JSON, and the exit status -- 0 for a
complete campaign without violations, 1 for violations or an incomplete campaign (fewer
cuts than asked, a device read-only early) unless --allow-read-only, 2 for misuse."""
import json
import subprocess
import sys

import pytest


def _ox(tmp_path, *args, timeout=900):
    out = tmp_path / "torture.json"
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", "--no-progress", "--json", str(out),
                        "--dir", str(tmp_path / "work"), *args], capture_output=True, text=True, timeout=timeout)
    doc = json.loads(out.read_text()) if out.exists() else None
    return p, doc


def _summaries(p) -> list[str]:
    return [ln for ln in p.stdout.splitlines() if ln.startswith(("pblk:", "appnvm:"))]


def test_ox_torture_quick_reports_zero_violations_for_both_modes(tmp_path):
    """The CI run of the product command: JSON per mode with cuts and violations."""
    p, doc = _ox(tmp_path, "--quick", "--mode", "both")
    assert p.returncode == 0, p.stdout + p.stderr
    for mode in ("pblk", "appnvm"):
        assert doc[mode]["cuts"] == 40 and doc[mode]["violations"] == []
        assert doc[mode]["final_overwrite"] == "ok" and doc[mode]["problems"] == []
    lines = _summaries(p)
    assert len(lines) == 2 and all("40 of 40 cuts" in ln and "0 violations" in ln and "slowest recovery" in ln
                                   for ln in lines)


def test_ox_torture_with_program_erase_and_read_faults_keeps_the_device_writable(tmp_path):
    """200 cuts per mode under program, erase and read failures: every cut made (some of
    them aimed), the device writable to the end, blocks retired within the budget, the
    final overwrite done, nothing lost."""
    p, doc = _ox(tmp_path, "--faults", "program,erase,read", "--cuts", "200", timeout=1800)
    assert p.returncode == 0, p.stdout + p.stderr
    for mode in ("pblk", "appnvm"):
        r = doc[mode]
        assert r["violations"] == [] and r["problems"] == []
        assert r["cuts"] >= 200 and r["targeted_cuts"] > 0 and r["recovery_cuts"] > 0
        assert r["read_only_round"] is None or r["read_only_round"] >= r["rounds"] - r["rounds"] // 10
        assert 1 <= r["permanent_faults"] <= r["fault_budget"] and r["blocks_retired"] <= r["permanent_faults"]
        assert r["final_overwrite"] == "ok"
    assert all("blocks retired by" in ln for ln in _summaries(p))


def test_ox_torture_short_of_its_cuts_because_read_only_exits_1_unless_allowed(tmp_path):
    """A pblk volume sized past its spares (ftl.op=0.05) is read-only from the start: the
    rounds have nothing to cut into, the campaign makes fewer cuts than asked and says why."""
    p, doc = _ox(tmp_path, "--mode", "pblk", "--cuts", "5", "--set", "ftl.op=0.05")
    assert p.returncode == 1
    line = _summaries(p)[0]
    assert "INCOMPLETE" in line and "of 5 cuts made" in line and "read-only in round 0" in line
    assert doc["pblk"]["cuts"] < 5 and doc["pblk"]["failed"]
    assert "ox: torture incomplete (pblk)" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p, doc = _ox(tmp_path, "--mode", "pblk", "--cuts", "5", "--set", "ftl.op=0.05", "--allow-read-only")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "accepted (--allow-read-only)" in _summaries(p)[0] and doc["pblk"]["accepted"]


def test_ox_torture_read_only_early_from_unbudgeted_faults_exits_1(tmp_path):
    p, doc = _ox(tmp_path, "--mode", "pblk", "--cuts", "10", "--seed", "11", "--faults", "program,erase",
                 "--no-fault-budget")
    assert p.returncode == 1
    r = doc["pblk"]
    assert r["cuts"] == 10 and r["read_only_round"] < r["rounds"] - r["rounds"] // 10
    assert "INCOMPLETE" in _summaries(p)[0] and "before the last tenth" in _summaries(p)[0]


def test_ox_torture_exhaustive_cuts_at_every_operation_and_names_their_kinds(tmp_path):
    p, doc = _ox(tmp_path, "--exhaustive", "100", "--jobs", "2")
    assert p.returncode == 0, p.stdout + p.stderr
    for mode in ("pblk", "appnvm"):
        r = doc[mode]
        assert r["ops_covered"] == 100 and r["violations"] == [] and r["problems"] == []
        assert sum(r["kinds"].values()) == 100
        assert not [k for k in r["kinds"] if "other" in k or "unknown" in k]
        assert all(k.split(":")[0] in ("erase", "program", "read") for k in r["kinds"])
    assert "cuts by operation kind:" in p.stdout


def test_ox_torture_takes_a_plugin_ftl_on_both_sides(tmp_path):
    """--ftl FILE.py:Class --side both: the template under program, erase and read faults,
    its spare blocks (Ftl.spare_blocks) budgeting them, nothing lost on either side."""
    p, doc = _ox(tmp_path, "--ftl", "oxftl.template:PageFtl", "--side", "both", "--cuts", "12",
                 "--faults", "program,erase,read")
    assert p.returncode == 0, p.stdout + p.stderr
    for side in ("host", "device"):
        r = doc[f"oxftl.template:PageFtl@{side}"]
        assert r["cuts"] == 12 and r["violations"] == [] and r["problems"] == []
        assert r["spare_blocks"] > 0 and r["final_overwrite"] == "ok"
    assert [ln.split(":")[0] for ln in p.stdout.splitlines() if ln.startswith("PageFtl@")] == \
        ["PageFtl@host", "PageFtl@device"]


@pytest.mark.parametrize("args", [("--exhaustive", "10", "--cuts", "5"), ("--from-op", "3"),
                                  ("--exhaustive", "10", "--from-op", "11"), ("--jobs", "2"),
                                  ("--faults", "program,typo"), ("--ftl", "nosuch.py:X"),
                                  ("--stack", "pblk", "--stack", "pblk"), ("--stack", "appnvm+2.0")])
def test_ox_torture_misuse_is_one_line_and_exit_2(tmp_path, args):
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", *args], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("ox: error: ")
