"""oxemu: the emulated machine and the OX controller with its VOLT media.

The host stack imports only `Machine` (and the wire formats in `oxemu.wire`).
"""
from .machine import Machine
from .volt import Faults, Geometry, StoreError, probe_geometry

__all__ = ["Faults", "Geometry", "Machine", "StoreError", "probe_geometry"]
