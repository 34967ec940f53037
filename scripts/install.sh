#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian 12 machine: the apt packages (Python
# venv and headers and gcc for packages built from source, FUSE 3 (libfuse3, which
# oxhost.fuse.lowlevel loads through ctypes) and its headers, e2fsprogs, fuse2fs for ext4
# without root, fio, chromium for the test that opens `ox compare`'s report.html in a
# headless browser) and a .venv holding the project in editable mode.
# Idempotent: a second run changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(python3-venv python3-dev gcc fuse3 libfuse3-dev pkg-config e2fsprogs fuse2fs fio chromium)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "install: apt packages ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The venv's python must be one every user can run (`ox up` as a user, from a venv made
# with sudo): a python3 under a private home (pyenv in /root) is passed over for the
# system's. $PYTHON forces a choice.
others_can_run() {
    local p d
    p=$(readlink -f "$1") || return 1
    [ -n "$p" ] && [ "$(( 0$(stat -Lc %a "$p") & 01 ))" -ne 0 ] || return 1
    d=$(dirname "$p")
    while [ "$d" != "/" ]; do
        [ "$(( 0$(stat -Lc %a "$d") & 01 ))" -ne 0 ] || return 1
        d=$(dirname "$d")
    done
}
pick_python() {
    local c p
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
    for c in python3 /usr/bin/python3; do
        p=$(command -v "$c") || continue
        "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || continue
        if others_can_run "$p"; then echo "$p"; return; fi
    done
    command -v python3
}
if [ ! -x .venv/bin/python ]; then
    PY=$(pick_python)
    echo "install: creating .venv with $PY" >&2
    "$PY" -m venv .venv
fi
stamp=.venv/.ox-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "install: installing the project into .venv" >&2
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi
