"""oxemu: the emulated machine and the OX controller with its VOLT media.

The host stack imports only this public face -- `Machine` (with the plain-value
parameters `NandTiming`, `AppNvmParams` and `ZnsParams`, and AppNVM's capacity rule
`appnvm_exported_sectors`), and for disk files `probe_geometry`,
`probe_label` and `format_media`, and `MediaImage` (a disk file's device-side view, read
without powering a device) -- and the wire formats in `oxemu.wire`.
"""
from .device.appnvm.params import AppNvmParams
from .device.appnvm.provisioning import exported_sectors as appnvm_exported_sectors
from .device.zns.params import ZnsParams
from .device.inspect import MediaImage
from .machine import Machine
from .volt import Faults, Geometry, NandTiming, StoreError, format_media, probe_geometry, probe_label

__all__ = ["AppNvmParams", "Faults", "Geometry", "Machine", "MediaImage", "NandTiming", "StoreError", "ZnsParams",
           "appnvm_exported_sectors", "format_media", "probe_geometry", "probe_label"]
