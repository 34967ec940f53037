"""`ox torture --ext4`: real ext4 on the mounted volume, cut under it, checked from the
sectors up (the flush log) and from the files down (journal replay, e2fsck, fsync'd files)."""
import json
import subprocess
import sys

from tests.conftest import require_tools

from .conftest import ROOT_ONLY

pytestmark = ROOT_ONLY


def test_ox_torture_ext4_rounds_find_nothing_lost_in_both_modes(tmp_path):
    require_tools("mkfs.ext4", "e2fsck", "fusermount3")
    out = tmp_path / "torture.json"
    p = subprocess.run([sys.executable, "-m", "oxhost.cli", "torture", "--ext4", "--ext4-rounds", "3",
                        "--cuts", "1", "--mode", "both", "--no-progress", "--json", str(out),
                        "--dir", str(tmp_path / "work")],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout + p.stderr
    doc = json.loads(out.read_text())["ext4"]
    for mode in ("pblk", "appnvm"):
        rep = doc[mode]
        assert rep["violations"] == [], rep["violations"]
        assert rep["rounds"] == 3 and rep["fsck_clean"] == 3
        assert rep["files_verified"] > 0
        # the flush log checks the whole volume after every cut
        assert rep["sectors_verified"] == rep["cuts"] * 13056
