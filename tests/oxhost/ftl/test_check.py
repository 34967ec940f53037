"""`ox ftl check` against the template, the built-ins and FTLs broken on purpose: a sound
FTL keeps every rule, a broken one is named by the rule it breaks (and only that one)."""
import json
import os
import subprocess
import sys

import pytest

from oxhost.ftl.check import RULES, Checker

HERE = os.path.dirname(os.path.abspath(__file__))
SABOTAGED = os.path.join(HERE, "sabotaged.py")


@pytest.mark.parametrize("mode", ["oxftl.template:PageFtl@host", "oxftl.template:PageFtl@device",
                                  "pblk", "appnvm"])
def test_check_passes_the_template_on_both_sides_and_the_builtins(mode):
    assert Checker(mode).run() == []


@pytest.mark.parametrize("cls, rule", [
    ("FlushBeforeProgram", "flush-durability"),     # a flush acknowledged before the data is programmed
    ("EraseBeforeRewrite", "gc-full-drive"),        # GC erases a block before its valid data is rewritten
    ("ForgetsTrims", "trim-durability"),            # recovery forgets trims
    ("ZerosForUnreadable", "media-errors"),         # an unreadable sector answered with zeros
])
def test_check_names_the_rule_a_sabotaged_ftl_breaks(cls, rule):
    failures = Checker(f"{SABOTAGED}:{cls}@host").run()
    broken = {f.rule for f in failures}
    assert rule in broken, f"{cls}: {[(f.rule, f.what) for f in failures]}"
    f = next(f for f in failures if f.rule == rule)
    assert f.replay == f"ox ftl check {SABOTAGED}:{cls} --side host --rule {rule} --seed 0"


def test_ftl_check_command_prints_the_broken_rule_and_its_replay_and_exits_1(tmp_path):
    out = tmp_path / "check.json"
    cp = subprocess.run([sys.executable, "-m", "oxhost.cli", "ftl", "check", f"{SABOTAGED}:ZerosForUnreadable",
                         "--side", "device", "--rule", "media-errors", "--rule", "trim", "--json", out],
                        capture_output=True, text=True, timeout=600)
    assert cp.returncode == 1, cp.stderr
    assert "ZerosForUnreadable@device: 1 of 2 rules kept, 1 broken" in cp.stdout
    assert f"BROKEN media-errors: {RULES['media-errors']}" in cp.stdout
    assert f"replay: ox ftl check {SABOTAGED}:ZerosForUnreadable --side device --rule media-errors" in cp.stdout
    doc = json.loads(out.read_text())
    assert [f["rule"] for f in doc["ZerosForUnreadable@device"]["failures"]] == ["media-errors"]
