"""What every `ox` command does the same way (the group in oxhost/cli/__init__.py): output
cut short by its reader ends quietly, `ox --version`, and click's shell completion
through the console script, as a user's shell runs them."""
import importlib.metadata
import os
import shlex
import subprocess
import sys

import pytest

from tests.conftest import require

OX = [sys.executable, "-m", "oxhost.cli"]
SMALL = ["--geometry", "2x2x8x16"]


@pytest.fixture(scope="module")
def disk(tmp_path_factory):
    path = tmp_path_factory.mktemp("group") / "ox.disk"
    subprocess.run([*OX, "format", "--mode", "pblk", "--yes", "--disk", str(path), *SMALL],
                   check=True, capture_output=True)
    return str(path)


def _long_commands(disk) -> list[list[str]]:
    """Commands whose output spans many lines (and some never reach a device)."""
    return [["dev", "info", "--disk", disk], ["bbt", "get", "0", "0", "--disk", disk],
            ["--help"], ["mount", "--help"], ["status"]]


def test_output_into_head_ends_quietly_through_a_shell_pipe(disk):
    require(os.path.exists("/bin/bash"), "bash")
    for args in _long_commands(disk):
        line = " ".join(map(shlex.quote, [*OX, *args]))
        cp = subprocess.run(["bash", "-c", f"set -o pipefail; {line} | head -1"],
                            capture_output=True, text=True)
        assert cp.returncode in (0, 141), (args, cp.returncode, cp.stderr)
        assert cp.stderr == "", (args, cp.stderr)
        assert len(cp.stdout.splitlines()) == 1, (args, cp.stdout)


def test_output_to_a_closed_pipe_exits_141_with_nothing_on_stderr(disk):
    """Every write fails with EPIPE (the reader is gone before ox starts): the status a
    shell reports for a program killed by SIGPIPE, and no 'Broken pipe' or 'Exception
    ignored' from ox or from Python's flush at exit."""
    r, w = os.pipe()
    os.close(r)
    try:
        for args in [*_long_commands(disk), ["--version"]]:
            cp = subprocess.run([*OX, *args], stdout=w, stderr=subprocess.PIPE, text=True)
            assert (cp.returncode, cp.stderr) == (141, ""), args
    finally:
        os.close(w)


def test_output_cut_short_leaves_the_disk_closed_cleanly(disk):
    """The command's cleanup runs before the quiet exit: the disk is not left locked or
    marked in use (a command after it opens it)."""
    r, w = os.pipe()
    os.close(r)
    try:
        cp = subprocess.run([*OX, "dev", "info", "--disk", disk], stdout=w, stderr=subprocess.PIPE)
    finally:
        os.close(w)
    assert cp.returncode == 141
    cp = subprocess.run([*OX, "dev", "info", "--disk", disk], capture_output=True, text=True)
    assert cp.returncode == 0 and "nchannels: 2" in cp.stdout, cp.stderr


def test_version_prints_the_package_version():
    cp = subprocess.run([*OX, "--version"], capture_output=True, text=True)
    version = importlib.metadata.version("ox-in-python")
    assert (cp.returncode, cp.stdout, cp.stderr) == (0, f"ox, version {version}\n", "")


@pytest.fixture
def ox_on_path(tmp_path):
    """A PATH whose `ox` is a console script like the one pip writes for `oxhost.cli:main`."""
    script = tmp_path / "ox"
    script.write_text(f"#!{sys.executable}\nimport re, sys\nfrom oxhost.cli import main\n"
                      "if __name__ == '__main__':\n"
                      "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                      "    sys.exit(main())\n")
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")


def test_completion_offers_subcommands_through_the_console_script(ox_on_path):
    env = dict(ox_on_path, _OX_COMPLETE="bash_complete", COMP_WORDS="ox mo", COMP_CWORD="1")
    cp = subprocess.run(["ox"], env=env, capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stderr == "", cp.stderr
    assert "plain,mount" in cp.stdout.splitlines()
    env.update(COMP_WORDS="ox up --mo", COMP_CWORD="2")
    assert "plain,--mode" in subprocess.run(["ox"], env=env, capture_output=True, text=True).stdout
    env.update(COMP_WORDS="ox up ./ox-m", COMP_CWORD="2")        # the shell completes paths
    assert "file,./ox-m" in subprocess.run(["ox"], env=env, capture_output=True, text=True).stdout


def test_completion_scripts_for_bash_zsh_fish_as_the_readme_says(ox_on_path):
    require(os.path.exists("/bin/bash"), "bash")
    script = ('eval "$(_OX_COMPLETE=bash_source ox)"; COMP_WORDS=(ox um); COMP_CWORD=1; '
              '_ox_completion ox; printf "%s\\n" "${COMPREPLY[@]}"')
    cp = subprocess.run(["bash", "-c", script], env=ox_on_path, capture_output=True, text=True)
    assert cp.returncode == 0 and cp.stdout.split() == ["umount"], (cp.stdout, cp.stderr)
    for shell, marker in (("zsh", "#compdef ox"), ("fish", "complete --no-files --command ox")):
        cp = subprocess.run(["ox"], env=dict(ox_on_path, _OX_COMPLETE=f"{shell}_source"),
                            capture_output=True, text=True)
        assert cp.returncode == 0 and marker in cp.stdout, (shell, cp.stdout[:300], cp.stderr)
