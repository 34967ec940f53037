"""`ox torture`: power-cut campaigns that check a stack never loses, ages or garbles a
flushed sector, and never wedges (SPEC 8, 9)."""
from .campaign import FAULT_MIXES, Config, ModeCampaign, default_geometry, run
from .oracle import Oracle, Violation

__all__ = ["FAULT_MIXES", "Config", "ModeCampaign", "Oracle", "Violation", "default_geometry", "run"]
