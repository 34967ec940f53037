"""`ox ftl check` on the zoned FTL: every rule of the FTL contract kept on zones, and the
command naming it the way a user types it."""
import json
import subprocess
import sys

from oxhost.ftl.check import RULES, Checker


def test_zoned_ftl_keeps_every_rule_of_the_ftl_contract():
    assert Checker("zoned").run() == []


def test_ftl_check_command_takes_the_zoned_ftl_and_an_ftl_on_zones(tmp_path):
    out = tmp_path / "check.json"
    cp = subprocess.run([sys.executable, "-m", "oxhost.cli", "ftl", "check", "zoned", "--rule", "trim",
                         "--json", str(out)], capture_output=True, text=True, check=False)
    assert cp.returncode == 0, cp.stderr
    assert "zoned: 1 of 1 rules kept" in cp.stdout and json.loads(out.read_text())["zoned"]["failures"] == []
    cp = subprocess.run([sys.executable, "-m", "oxhost.cli", "ftl", "check", "oxftl.template:PageFtl", "--side",
                         "host", "--spec", "zns", "--rule", "read-after-write"], capture_output=True, text=True,
                        check=False)
    assert cp.returncode == 0 and "PageFtl@host+zns: 1 of 1 rules kept" in cp.stdout, cp.stderr
    cp = subprocess.run([sys.executable, "-m", "oxhost.cli", "ftl", "check", "oxftl.template:PageFtl", "--spec",
                         "zns"], capture_output=True, text=True, check=False)
    assert cp.returncode == 2 and cp.stderr.count("\n") == 1 and "--side host" in cp.stderr
    assert set(RULES) >= {"trim", "read-after-write"}
