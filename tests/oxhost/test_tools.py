"""The programs ox runs are found where Debian puts them, even with a plain user's PATH, a
stand-in earlier on PATH wins, and a missing one names its Debian package."""
import os

import pytest

from oxhost import tools
from tests.conftest import require

USER_PATH = "/usr/local/bin:/usr/bin:/bin"      # Debian's login PATH for a plain user


def test_tools_found_in_sbin_with_a_plain_users_path(monkeypatch):
    require(os.path.exists("/usr/sbin/blkid") or os.path.exists("/sbin/blkid"),
            "blkid in /usr/sbin (util-linux)")
    require(os.path.exists("/usr/sbin/mkfs.ext4") or os.path.exists("/sbin/mkfs.ext4"),
            "mkfs.ext4 in /usr/sbin (e2fsprogs)")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for name in ("blkid", "mkfs.ext4", "e2fsck", "losetup"):
        path = tools.find(name)
        assert os.path.dirname(path) in ("/usr/sbin", "/sbin"), path
        assert os.access(path, os.X_OK)
    assert tools.command(["blkid", "-p", "x"])[1:] == ["-p", "x"]
    assert tools.command(["blkid"])[0] == tools.find("blkid")


def test_tools_a_program_earlier_on_path_wins(monkeypatch, tmp_path):
    fake = tmp_path / "mount"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{USER_PATH}")
    assert tools.find("mount") == str(fake)


def test_tools_a_missing_program_names_its_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "SBIN_DIRS", (str(tmp_path),))
    with pytest.raises(tools.ToolNotFound) as e:
        tools.find("blkid")
    assert str(e.value) == "blkid not found: install util-linux (apt-get install util-linux)"
    for name, pkg in (("mkfs.ext4", "e2fsprogs"), ("e2fsck", "e2fsprogs"), ("fuse2fs", "fuse2fs"),
                      ("fusermount3", "fuse3"), ("losetup", "mount"), ("mount", "mount"),
                      ("fio", "fio")):
        with pytest.raises(tools.ToolNotFound, match=f"^{name} not found: install {pkg} "):
            tools.command([name, "--help"])
    assert tools.which("blkid") is None
