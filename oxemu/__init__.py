"""oxemu: the emulated machine and the OX controller with its VOLT media.

The host stack imports only this public face -- `Machine` (with the plain-value
parameters `NandTiming` and `AppNvmParams`), and for disk files `probe_geometry`,
`probe_label` and `format_media` -- and the wire formats in `oxemu.wire`.
"""
from .device.appnvm.params import AppNvmParams
from .machine import Machine
from .volt import Faults, Geometry, NandTiming, StoreError, format_media, probe_geometry, probe_label

__all__ = ["AppNvmParams", "Faults", "Geometry", "Machine", "NandTiming", "StoreError", "format_media",
           "probe_geometry", "probe_label"]
