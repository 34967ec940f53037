"""The device-mode seam: every mode implements DeviceMode, and the controller, the admin
command set, the device and the machine call it and nothing else (no probing)."""
import ast
import os

import pytest

import oxemu
from oxemu.device import DeviceMode, Unpowered
from oxemu.device.appnvm import AppNvmFtl
from oxemu.device.lnvm import LnvmMode
from oxemu.device.ocssd2 import Ocssd2Mode
from oxemu.device.plugin import PluginFtlMode


@pytest.mark.parametrize("cls", [LnvmMode, Ocssd2Mode, AppNvmFtl, PluginFtlMode, Unpowered])
def test_every_device_mode_implements_the_interface(cls):
    assert issubclass(cls, DeviceMode)
    assert not cls.__abstractmethods__


@pytest.mark.parametrize("rel", ["device/__init__.py", "device/controller.py", "device/admin.py",
                                 "machine/machine.py"])
def test_the_controller_side_never_probes_the_mode(rel):
    path = os.path.join(os.path.dirname(oxemu.__file__), rel)
    with open(path) as f:
        tree = ast.parse(f.read())
    probes = [n.lineno for n in ast.walk(tree)
              if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("getattr", "hasattr")]
    assert probes == [], f"{rel}: getattr/hasattr at lines {probes}"
