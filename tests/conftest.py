"""Shared fixtures: emulated machines and lightnvm devices, always over the real bus.

Every machine a test builds through `make_machine` is closed at teardown, newest first,
so a failing test never leaves a locked disk file or a live unicorn instance behind.
"""
import logging
import os
import shutil

import pytest

from oxemu import Geometry, Machine
from oxhost.lightnvm import Device

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, what: str) -> None:
    """A test whose prerequisite is missing is skipped on a developer's machine, but fails
    under CI=true: CI must never go green by skipping the real mounts."""
    if not ok:
        (pytest.fail if CI else pytest.skip)(f"prerequisite missing: {what}")


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    require(not missing, f"{', '.join(missing)} not installed (scripts/install.sh installs it)")


@pytest.fixture
def needs_root():
    require(os.geteuid() == 0, "root (loop mounts, other users)")


@pytest.fixture
def needs_fuse():
    require(os.path.exists("/dev/fuse"), "/dev/fuse")


@pytest.fixture
def make_machine():
    """make_machine(**Machine kwargs) -> Machine; small volatile geometry unless told."""
    made = []

    def make(**kw):
        kw.setdefault("geometry", Geometry.small())
        m = Machine(**kw)
        made.append(m)
        return m

    yield make
    for m in reversed(made):
        m.close()


@pytest.fixture
def open_dev(make_machine):
    """open_dev(machine=None, driver_kw..., **Machine kwargs) -> lightnvm Device."""

    def open_(machine=None, *, driver_kw=None, **machine_kw):
        m = machine if machine is not None else make_machine(**machine_kw)
        return Device.open(m, **(driver_kw or {}))

    return open_


@pytest.fixture
def machine(make_machine):
    """A volatile machine with the small test geometry (2ch x 2lun x 8blk x 16pg x 2pl)."""
    return make_machine()


@pytest.fixture
def dev(machine):
    """An open-channel Device on `machine`."""
    return Device.open(machine)


@pytest.fixture
def default_machine(make_machine):
    """The full SPEC geometry (8ch x 4lun x 32blk x 128pg x 2pl x 4sec); media are lazy."""
    return make_machine(geometry=Geometry())


@pytest.fixture
def default_dev(default_machine):
    return Device.open(default_machine)


@pytest.fixture
def quad_dev(make_machine):
    """A 4-plane device (small geometry), the only shape that accepts quad-plane mode."""
    return Device.open(make_machine(geometry=Geometry.small(nplanes=4)))


DEVICE_LOGGERS = ("oxemu", "oxhost.pblk", "oxhost.nvme", "oxhost.lightnvm", "oxhost.driver")


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(request, caplog):
    """A device bug turned into a status must not pass quietly: a test fails when the device
    or an FTL logs an ERROR, unless it is marked `device_errors_expected` (a test of exactly
    that error path)."""
    yield
    if request.node.get_closest_marker("device_errors_expected"):
        return
    errors = [r for when in ("setup", "call") for r in caplog.get_records(when)
              if r.levelno >= logging.ERROR and r.name.startswith(DEVICE_LOGGERS)]
    if errors:
        pytest.fail("logged ERROR(s): " + " | ".join(f"{r.name}: {r.getMessage()[:300]}" for r in errors[:5]))
