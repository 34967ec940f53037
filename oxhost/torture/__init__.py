"""`ox torture`: power-cut campaigns that check a stack never loses, ages or garbles a
flushed sector, and never wedges (SPEC 8, 9): random cuts over many rounds (campaign.py),
or a cut at every operation of one workload (exhaustive.py)."""
from .campaign import FAULT_MIXES, Config, ModeCampaign, ModeReport, default_geometry, run
from .exhaustive import Exhaustive, ExhaustiveReport, run_exhaustive
from .oracle import Oracle, Violation

__all__ = ["FAULT_MIXES", "Config", "Exhaustive", "ExhaustiveReport", "ModeCampaign", "ModeReport", "Oracle",
           "Violation", "default_geometry", "run", "run_exhaustive"]
