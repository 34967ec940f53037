"""The zoned namespace's shape as plain values, so a host-side configuration (oxhost.config's
[zns] section) reaches the device through `Machine(zns=...)` without oxemu importing
anything of the host. The defaults are the mode's built-in shape."""
from dataclasses import dataclass


@dataclass(frozen=True)
class ZnsParams:
    """zone_luns: LUNs a zone stripes over, one block on each (0: one LUN on every
    channel); the zone size is zone_luns x a block's sectors. zone_capacity_bytes: the
    writable part of every zone, a multiple of 4096 up to the zone size (0: the size less
    one write unit per LUN of the zone, the spare units that absorb failed and torn
    programs). The zone shape is recorded on the media when it is first written: None
    for either means what the media records (else 0); a value the media contradicts is
    refused. max_open / max_active: open and active zone limits (0: no limit); 14 and 14
    are a datacenter ZNS drive's (WD Ultrastar DC ZN540); they may change between opens."""

    zone_luns: int | None = None
    zone_capacity_bytes: int | None = None
    max_open: int = 14
    max_active: int = 14

    def __post_init__(self):
        if min(self.zone_luns or 0, self.zone_capacity_bytes or 0, self.max_open, self.max_active) < 0:
            raise ValueError("ZNS zone_luns, zone_capacity_bytes, max_open and max_active must be >= 0")
        if (self.zone_capacity_bytes or 0) % 4096:
            raise ValueError(f"ZNS zone_capacity_bytes {self.zone_capacity_bytes} is not a multiple of 4096")
        if self.max_open and self.max_active and self.max_open > self.max_active:
            raise ValueError(f"ZNS max_open {self.max_open} exceeds max_active {self.max_active}")
