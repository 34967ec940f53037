"""One configuration for the device and both FTLs, so `ox compare` runs them on equal terms.

A TOML file (`--config FILE`, read with tomllib) plus `--set section.key=value` overrides
whose values are TOML scalars (numbers, booleans, quoted strings) or bare words, which are
taken as strings (`--set ftl.gc_policy=cost-benefit`). Every section is a frozen dataclass
that checks its own keys; `Config` holds one of each and checks what spans sections.
Defaults reproduce the stacks' built-in constants exactly (see each section's docstring
for the constant it mirrors). Every mistake is one `ConfigError` line naming the key::

    config: ftl.gc_policy: 'gredy' is not one of greedy, cost-benefit, fifo, random, d-choice
    config: run.toml: nand.t_prog_ns: must be >= 0, got -5

The device side (oxemu) never imports this module: the wiring hands it plain values
(`NandConfig.to_nand_timing()`, `Config.appnvm_capacity_bytes()`, the section dicts).
The rules that turn these values into sizes belong to the FTLs and are only called from
here: pblk's capacity, spare and rate-limiter rules (oxhost.pblk.params, oxhost.pblk.rl),
AppNVM's capacity (`oxemu.appnvm_exported_sectors`) and provisioning.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any

from oxemu import AppNvmParams, Geometry, NandTiming, ZnsParams, appnvm_exported_sectors

from .pblk import params as pblk_rules
from .pblk import rl as pblk_rl

__all__ = ["AppnvmConfig", "Config", "ConfigError", "FtlConfig", "GC_POLICIES", "GeometryConfig",
           "HostConfig", "NandConfig", "PblkConfig", "WEAR_LEVELING", "ZnsConfig"]

GC_POLICIES = ("greedy", "cost-benefit", "fifo", "random", "d-choice")
WEAR_LEVELING = ("none", "dynamic")
SECTOR_NBYTES = 4096            # fixed: both FTLs map 4 KiB sectors
OOB_NBYTES = 1024               # fixed: per page (per plane)


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range; str() is one line.

    `key` is the dotted key ("ftl.op"), or None for a problem with the file as a whole;
    `source` is the file the value came from, or None for defaults and `--set`.
    """

    def __init__(self, key: str | None, message: str, source: str | None = None):
        self.key = key
        self.message = " ".join(str(message).split())      # always one line
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = ["config"]
        if self.source:
            parts.append(self.source)
        if self.key:
            parts.append(self.key)
        return ": ".join(parts) + ": " + self.message

    def at(self, source: str | None) -> ConfigError:
        """The same error, attributed to `source` (no-op when it already names one)."""
        if self.source or not source:
            return self
        return ConfigError(self.key, self.message, source)


# ---------------------------------------------------------------- sections

def _key(default: Any, doc: str, *, lo: float | None = None, hi: float | None = None,
         choices: tuple[str, ...] | None = None) -> Any:
    """A config key: its default, a one-line doc, and its allowed range or choices."""
    return field(default=default, metadata={"doc": doc, "lo": lo, "hi": hi, "choices": choices})


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            dict: "a table", list: "an array"}.get(type(value), type(value).__name__)
    shown = json.dumps(value) if isinstance(value, bool) else repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{shown} ({kind})"


def _fmt_num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class _Section:
    """Base of the sections: checks every key's type and range after construction."""

    NAME = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            want = type(f.default)
            key = f"{self.NAME}.{f.name}"
            given = value
            if want is float and type(value) is int:           # 1 is a fine number
                value = float(value)
                object.__setattr__(self, f.name, value)
            if type(value) is not want:
                raise ConfigError(key, f"expected {_TYPE_NAMES[want]}, got {_describe(value)}")
            meta = f.metadata
            if want is float and not math.isfinite(value):
                raise ConfigError(key, f"must be a finite number, got {value!r}")
            if meta["choices"] is not None and value not in meta["choices"]:
                raise ConfigError(key, f"{value!r} is not one of {', '.join(meta['choices'])}")
            lo, hi = meta["lo"], meta["hi"]
            ranged = lo is not None and hi is not None and (want is float or hi <= 0xFFFF)
            if ranged and not lo <= value <= hi:
                raise ConfigError(key, f"must be in [{_fmt_num(lo)}, {_fmt_num(hi)}], got {given!r}")
            if lo is not None and value < lo:
                raise ConfigError(key, f"must be >= {_fmt_num(lo)}, got {given!r}")
            if hi is not None and value > hi:
                raise ConfigError(key, f"must be <= {_fmt_num(hi)}, got {given!r}")
        self._check()

    def _check(self) -> None:
        """Checks that involve more than one key of the section."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def doc(cls, key: str) -> str:
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}[key]

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.keys()}


@dataclass(frozen=True)
class GeometryConfig(_Section):
    """[geometry]: the NAND geometry of the device (SPEC 3); defaults are `oxemu.Geometry()`.

    Sectors are 4096 bytes and each page (per plane) has 1024 OOB bytes; those are fixed.
    A chunk (pblk) or block (AppNVM) is one block across all planes of one LUN:
    npages x nplanes x nsectors sectors.
    """

    NAME = "geometry"
    nchannels: int = _key(8, "channels", lo=1, hi=0xFF)
    nluns: int = _key(4, "LUNs per channel", lo=1, hi=0xFF)
    nblocks: int = _key(32, "blocks per LUN", lo=1, hi=0xFFFF)
    npages: int = _key(128, "pages per block", lo=1, hi=0xFFFF)
    nplanes: int = _key(2, "planes per LUN: 1, 2 or 4", lo=1, hi=4)
    nsectors: int = _key(4, "4 KiB sectors per page (per plane)", lo=1, hi=0xFFFF // SECTOR_NBYTES)

    def _check(self) -> None:
        if self.nplanes not in (1, 2, 4):
            raise ConfigError("geometry.nplanes", f"must be 1, 2 or 4, got {self.nplanes}")
        try:
            self.to_geometry()
        except ValueError as e:                 # Geometry's own rules, reworded per key
            msg = str(e).removeprefix("geometry: ")
            name = next((k for k in self.keys() if msg.startswith(k + " ")), None)
            if name is None:
                name = "nsectors" if "OOB" in msg else "nblocks"
            raise ConfigError(f"geometry.{name}", msg) from None

    def to_geometry(self) -> Geometry:
        """The device geometry (`oxemu.Geometry`) these keys describe."""
        return Geometry(nchannels=self.nchannels, nluns=self.nluns, nblocks=self.nblocks,
                        npages=self.npages, nplanes=self.nplanes, nsectors=self.nsectors,
                        sector_nbytes=SECTOR_NBYTES, oob_nbytes=OOB_NBYTES)


_NS_MAX = 10**12                                # 1000 s: anything above is a typo


@dataclass(frozen=True)
class NandConfig(_Section):
    """[nand]: NAND timing of the VOLT model (SPEC 8); defaults are `NandTiming()`.

    Plain values are per operation on one LUN: t_read_ns (array sense, tR), t_prog_ns
    (tPROG), t_erase_ns (tBERS, one block), and the channel bus speed in MB/s (10^6 bytes/s).

    MLC-like page types (optional): t_read_lsb_ns / t_read_msb_ns and t_prog_lsb_ns /
    t_prog_msb_ns give the time of LSB (lower) and MSB (upper) pages; 0 means "same as the
    plain value". Pages alternate within a block: even page numbers are LSB pages, odd
    ones MSB pages (pg 0 LSB, pg 1 MSB, pg 2 LSB, ...), the simple pairing FEMU's MLC mode
    uses. `NandTiming` carries the plain values (the typical times of the LightNVM
    identity, with maxima of 1.5x typical, or the MSB time when that is longer) and the
    per-type ones, which the timing model charges per page (`NandTiming.read_ns(pg)`,
    `prog_ns(pg)`, which `read_ns` / `prog_ns` here call).
    """

    NAME = "nand"
    t_read_ns: int = _key(40_000, "page read (sense) time tR, ns", lo=0, hi=_NS_MAX)
    t_prog_ns: int = _key(200_000, "page program time tPROG, ns", lo=0, hi=_NS_MAX)
    t_erase_ns: int = _key(2_000_000, "block erase time tBERS, ns", lo=0, hi=_NS_MAX)
    channel_mb_s: int = _key(800, "channel transfer rate, MB/s (10^6 bytes/s)", lo=1, hi=10**6)
    t_read_lsb_ns: int = _key(0, "read time of LSB (even) pages, ns; 0 = t_read_ns", lo=0, hi=_NS_MAX)
    t_read_msb_ns: int = _key(0, "read time of MSB (odd) pages, ns; 0 = t_read_ns", lo=0, hi=_NS_MAX)
    t_prog_lsb_ns: int = _key(0, "program time of LSB (even) pages, ns; 0 = t_prog_ns", lo=0, hi=_NS_MAX)
    t_prog_msb_ns: int = _key(0, "program time of MSB (odd) pages, ns; 0 = t_prog_ns", lo=0, hi=_NS_MAX)

    def _pages(self) -> NandTiming:
        """These times under NandTiming's per-page-type rule (one rule, the device's)."""
        return NandTiming(t_read_ns=self.t_read_ns, t_prog_ns=self.t_prog_ns,
                          t_read_lsb_ns=self.t_read_lsb_ns, t_read_msb_ns=self.t_read_msb_ns,
                          t_prog_lsb_ns=self.t_prog_lsb_ns, t_prog_msb_ns=self.t_prog_msb_ns)

    @property
    def mlc(self) -> bool:
        """Whether LSB and MSB pages have times of their own."""
        return self._pages().paged

    @staticmethod
    def page_type(pg: int) -> str:
        """"lsb" for even page numbers, "msb" for odd ones."""
        return "msb" if pg & 1 else "lsb"

    def read_ns(self, pg: int) -> int:
        """Read (sense) time of page `pg` of a block."""
        return self._pages().read_ns(pg)

    def prog_ns(self, pg: int) -> int:
        """Program time of page `pg` of a block."""
        return self._pages().prog_ns(pg)

    def to_nand_timing(self) -> NandTiming:
        """The plain values as the device's `NandTiming` (maxima: 1.5x typical, at least
        the slowest page type)."""
        return NandTiming(
            t_read_ns=self.t_read_ns,
            t_read_max_ns=max(self.t_read_ns * 3 // 2, self.read_ns(0), self.read_ns(1)),
            t_prog_ns=self.t_prog_ns,
            t_prog_max_ns=max(self.t_prog_ns * 3 // 2, self.prog_ns(0), self.prog_ns(1)),
            t_erase_ns=self.t_erase_ns,
            t_erase_max_ns=self.t_erase_ns * 3 // 2,
            channel_bytes_per_s=self.channel_mb_s * 1_000_000,
            t_read_lsb_ns=self.t_read_lsb_ns, t_read_msb_ns=self.t_read_msb_ns,
            t_prog_lsb_ns=self.t_prog_lsb_ns, t_prog_msb_ns=self.t_prog_msb_ns)


@dataclass(frozen=True)
class FtlConfig(_Section):
    """[ftl]: what both FTLs share, so they are compared on the same terms.

    op: over-provisioning, the fraction of the raw blocks held back from the exported
    capacity, for both stacks: exported sectors = floor(chunks x (1 - op)) x sectors per
    chunk (each FTL's own rule: oxhost.pblk.params.exported_sectors,
    oxemu.appnvm_exported_sectors). 0.2 is pblk's OVER_PROVISION_PCT of kernels 4.12-4.15
    and AppNVM's default capacity.

    gc_policy picks the victim: greedy (fewest valid sectors: pblk's and AppNVM's policy
    today), cost-benefit (largest (1 - u) x age / (1 + u), u the valid fraction, age the
    time since the victim was last written: Rosenblum & Ousterhout's LFS cleaner), fifo
    (the oldest closed victim, a circular log), random (uniform among closed victims,
    seeded by gc_seed) or d-choice (the fewest valid among gc_d victims drawn uniformly:
    Van Houdt's d-choices). pblk picks lines, AppNVM blocks.

    GC thresholds, each stack in its own unit of reclaim (a pblk line is one block on
    every LUN of the target; an AppNVM block is one block of one LUN):

    gc_foreground: GC units held for GC alone. When free space falls to this reserve,
    user writes wait until GC has freed a unit (GC in the foreground).
      pblk: lines; the rate limiter's reserve is gc_foreground lines of sectors
            (PBLK_GC_RSV_LINE = 1).
      AppNVM: blocks beyond its metadata floor (the blocks the next checkpoint and the
            trim journal need); user writes may not take the last gc_floor +
            gc_foreground free blocks (provisioning: reserve = gc_floor + 1).
    gc_background: GC runs alongside user writes once free space falls below this.
      pblk: a fraction of all line space: the rate limiter's high threshold is
            max(total x gc_background, 2 reserves); below it users get a shrinking share
            of the write buffer and GC the rest (PBLK_USER_HIGH_THRS = 8, so 1/8).
      AppNVM: the same fraction of one stripe (one block per LUN) above its reserve:
            GC runs in the write path while fewer than
            reserve + max(1, floor(gc_background x LUNs)) blocks are free
            (provisioning: gc_low = reserve + max(1, LUNs // 8)).
      The same number therefore keeps far more space free in pblk (1/8 of its line space
      at the default) than in AppNVM (a margin of 32 // 8 = 4 blocks above a reserve of a
      few blocks, under 1 % of the 1024 blocks of the default geometry): that is how the
      two FTLs are built today, and what a sweep of this key shows.
    """

    NAME = "ftl"
    op: float = _key(0.20, "over-provisioning: fraction of raw blocks not exported", lo=0.01, hi=0.9)
    gc_policy: str = _key("greedy", "GC victim policy", choices=GC_POLICIES)
    gc_d: int = _key(4, "d of the d-choice policy: candidates drawn per victim", lo=1)
    gc_seed: int = _key(0, "seed of the random and d-choice policies", lo=0, hi=2**63 - 1)
    gc_background: float = _key(0.125, "free fraction below which GC runs alongside user writes",
                                lo=0.0, hi=0.9)
    gc_foreground: int = _key(1, "GC units (pblk lines, AppNVM blocks) reserved for GC", lo=1)


@dataclass(frozen=True)
class PblkConfig(_Section):
    """[pblk]: host-FTL knobs that have no AppNVM counterpart.

    write_buffer_entries: 4 KiB entries of the ring write buffer (NR_ENTRIES = 2048; pblk
    rounds it down to whole write units). rl_low_div: the rate limiter's low threshold is
    1/rl_low_div of the line space (PBLK_USER_LOW_THRS = 10; pblk-rl.c computes it and
    reports it). durable_discard: discards are logged to the media and survive a restart
    (SPEC 9); false gives pblk 4.12's volatile discards, which a restart can undo.

    pblk's other rate-limiter constants are [ftl] keys: its high threshold
    (1/PBLK_USER_HIGH_THRS) is ftl.gc_background and its GC reserve (PBLK_GC_RSV_LINE) is
    ftl.gc_foreground; `Config.pblk_rl()` gives the resulting thresholds.
    """

    NAME = "pblk"
    write_buffer_entries: int = _key(2048, "write buffer entries (4 KiB each)", lo=1)
    rl_low_div: int = _key(10, "rate limiter low threshold: 1/rl_low_div of the line space", lo=1)
    durable_discard: bool = _key(True, "discards survive a restart (false: pblk 4.12's volatile discards)")


@dataclass(frozen=True)
class AppnvmConfig(_Section):
    """[appnvm]: device-FTL knobs that have no pblk counterpart.

    write_buffer_units_per_lun: write units (one page on all planes) the device buffers per
    LUN before it must program (WRITE_BUFFER_UNITS_PER_LUN = 2). wear_leveling: none (free
    blocks taken in order) or dynamic (the free block with the lowest erase count first).
    checkpoint_interval_blocks: blocks' worth of data units written between two periodic
    map checkpoints; 0 = the built-in rule max(4, total blocks // 8). capacity_bytes:
    exported bytes, a multiple of 4096; 0 = from ftl.op, by the same rule as pblk
    (`Config.appnvm_capacity_bytes()`).
    """

    NAME = "appnvm"
    write_buffer_units_per_lun: int = _key(2, "buffered write units per LUN", lo=1)
    wear_leveling: str = _key("none", "free-block choice: none or dynamic (lowest erase count)",
                              choices=WEAR_LEVELING)
    checkpoint_interval_blocks: int = _key(0, "blocks written between map checkpoints; 0 = max(4, blocks/8)",
                                           lo=0)
    capacity_bytes: int = _key(0, "exported bytes; 0 = from ftl.op", lo=0)

    def _check(self) -> None:
        if self.capacity_bytes % SECTOR_NBYTES:
            raise ConfigError("appnvm.capacity_bytes",
                              f"must be a multiple of {SECTOR_NBYTES}, got {self.capacity_bytes}")


@dataclass(frozen=True)
class HostConfig(_Section):
    """[host]: what the host CPU costs in virtual time, charged on the modeled clock.

    Defaults are ballpark figures for one current x86 server core, not measurements of
    this Python process (whose own CPU time is reported separately):
      write_buffer_copy_ns (per 4 KiB sector copied into pblk's write buffer) = 300: a
        single core copies about 10-20 GB/s (STREAM copy); 4 KiB at ~13 GB/s is ~300 ns.
      gc_move_ns (per 4 KiB sector pblk's GC moves through the host) = 400: the same copy
        from the GC read buffer into the write buffer, plus the L2P check and update.
      submit_ns (per NVMe command submitted) = 1000 and complete_ns (per completion
        handled) = 1000: the Linux block layer and NVMe driver spend about 1-2 us of CPU
        per I/O in total (bio and request setup, SQE, doorbell; interrupt, CQE, bio end),
        the per-I/O overhead that SPDK and io_uring polling papers report for the kernel path.
    How `ox compare` charges them (and pblk's write buffer in virtual time) is
    oxhost/compare/hostclock.py. All zero gives the clock of the QD 1 runner before queue
    depths: a request completes when its synchronous call returns on the device's clock.
    """

    NAME = "host"
    write_buffer_copy_ns: int = _key(300, "ns per 4 KiB sector copied into pblk's write buffer",
                                     lo=0, hi=_NS_MAX)
    gc_move_ns: int = _key(400, "ns per 4 KiB sector moved through the host by pblk's GC", lo=0, hi=_NS_MAX)
    submit_ns: int = _key(1000, "ns per NVMe command submitted", lo=0, hi=_NS_MAX)
    complete_ns: int = _key(1000, "ns per NVMe completion handled", lo=0, hi=_NS_MAX)

    @property
    def enabled(self) -> bool:
        """Whether any host cost is charged."""
        return any(self.to_dict().values())


@dataclass(frozen=True)
class ZnsConfig(_Section):
    """[zns]: the zoned namespace of `--spec zns` (and the zoned FTL on it); defaults are
    `oxemu.ZnsParams()`.

    zone_luns: LUNs a zone stripes over, one block on each, so the zone size is zone_luns
    blocks (0: one LUN on every channel -- 8 blocks, 32 MiB, on the default geometry).
    zone_capacity_bytes: the writable part of every zone, a multiple of 4096 up to the
    zone size (0: the size less one write unit per LUN of the zone: the spare units a
    program failure or a torn program is moved past). max_open, max_active: the zones
    that may be open, and open or closed, at once (0: no limit; 14 and 14 are those of a
    datacenter ZNS drive, WD Ultrastar DC ZN540).
    """

    NAME = "zns"
    zone_luns: int = _key(0, "LUNs a zone stripes over; 0 = one LUN on every channel", lo=0, hi=0xFFFF)
    zone_capacity_bytes: int = _key(0, "writable bytes per zone; 0 = the zone size less one write unit per LUN",
                                    lo=0)
    max_open: int = _key(14, "open zones at most; 0 = no limit", lo=0, hi=0xFFFF)
    max_active: int = _key(14, "active (open or closed) zones at most; 0 = no limit", lo=0, hi=0xFFFF)

    def _check(self) -> None:
        if self.zone_capacity_bytes % SECTOR_NBYTES:
            raise ConfigError("zns.zone_capacity_bytes",
                              f"must be a multiple of {SECTOR_NBYTES}, got {self.zone_capacity_bytes}")
        if self.max_open and self.max_active and self.max_open > self.max_active:
            raise ConfigError("zns.max_open", f"{self.max_open} exceeds zns.max_active={self.max_active}")



SECTIONS: dict[str, type[_Section]] = {c.NAME: c for c in (GeometryConfig, NandConfig, FtlConfig,
                                                          PblkConfig, AppnvmConfig, HostConfig, ZnsConfig)}


# ---------------------------------------------------------------- the whole

def _parse_set(item: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, value parsed as a TOML scalar or bare word)."""
    if "\n" in item or "\r" in item:
        raise ConfigError(None, f"--set {item!r}: one line expected")
    name, eq, text = item.partition("=")
    name = name.strip()
    if not eq:
        raise ConfigError(name or None, f"--set {item!r}: expected section.key=value")
    section, dot, key = name.partition(".")
    if not dot or not section or not key:
        raise ConfigError(name, "--set expects section.key=value (sections: " + ", ".join(SECTIONS) + ")")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text                        # a bare word: cost-benefit, none, dynamic
    if not isinstance(value, (bool, int, float, str)):
        value = text
    return section, key, value


def _check_known(section: str, key: str | None, source: str | None) -> None:
    if section not in SECTIONS:
        name = f"{section}.{key}" if key else section
        raise ConfigError(name, f"unknown section {section!r} (known: {', '.join(SECTIONS)})", source)
    if key is not None and key not in SECTIONS[section].keys():
        raise ConfigError(f"{section}.{key}", f"unknown key ({section} has: "
                          f"{', '.join(SECTIONS[section].keys())})", source)


@dataclass(frozen=True)
class Config:
    """The whole configuration: one frozen section per TOML table.

    Build it with `Config.default()`, `Config.load(path, sets)`, `Config.from_dict(d)` or
    `cfg.with_overrides(sets)`; print it with `to_dict()` (every report carries it) and
    save it with `to_toml()`, which `load` reads back to an equal Config.
    """

    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    nand: NandConfig = field(default_factory=NandConfig)
    ftl: FtlConfig = field(default_factory=FtlConfig)
    pblk: PblkConfig = field(default_factory=PblkConfig)
    appnvm: AppnvmConfig = field(default_factory=AppnvmConfig)
    host: HostConfig = field(default_factory=HostConfig)
    zns: ZnsConfig = field(default_factory=ZnsConfig)
    # dotted keys a file or --set gave (not compared): a volume keeps what its media label
    # records (geometry, capacity) unless the configuration asks for something else
    given: frozenset = field(default=frozenset(), compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ConfigError(name, f"expected a {cls.__name__}, got {type(getattr(self, name)).__name__}")
        geo = self.geometry.to_geometry()
        if self.exported_sectors() < 1:
            raise ConfigError("ftl.op", f"{self.ftl.op!r} leaves no exported capacity on "
                              f"{geo.total_luns * geo.nblocks} blocks")
        self._check_pblk_spare(geo)
        unit = geo.nplanes * geo.nsectors
        if self.pblk.write_buffer_entries < unit:
            raise ConfigError("pblk.write_buffer_entries", f"{self.pblk.write_buffer_entries} entries "
                              f"do not hold one write unit of {unit} sectors")
        if self.appnvm.capacity_bytes > geo.data_nbytes:
            raise ConfigError("appnvm.capacity_bytes", f"{self.appnvm.capacity_bytes} is more than "
                              f"the {geo.data_nbytes} bytes of the media")
        self._check_zns(geo)

    def _check_zns(self, geo: Geometry) -> None:
        """The zones must fit the geometry: zone_luns divides the LUNs, the capacity fits a zone."""
        z = self.zns
        zl = z.zone_luns or geo.nchannels
        if zl > geo.total_luns or geo.total_luns % zl:
            raise ConfigError("zns.zone_luns", f"{zl} does not divide the {geo.total_luns} LUNs of the geometry")
        size = zl * geo.sectors_per_block * SECTOR_NBYTES
        if z.zone_capacity_bytes > size:
            raise ConfigError("zns.zone_capacity_bytes", f"{z.zone_capacity_bytes} is more than the zone size "
                              f"of {size} bytes ({zl} blocks)")

    def _check_pblk_spare(self, geo: Geometry) -> None:
        """pblk over every LUN must start writable: the data sectors its lines hold beyond
        the exported capacity must cover what its read-only rule asks for its GC reserve
        (oxhost.pblk.params.spare_at_start)."""
        spare, need, data = pblk_rules.spare_at_start(geo, self.exported_sectors(), self.ftl.gc_foreground)
        if data <= 0:
            raise ConfigError("geometry.npages", f"{geo.npages} pages leave no room for data in a pblk "
                              f"line beside its metadata")
        if spare < need:
            key = "ftl.gc_foreground" if self.ftl.gc_foreground != FtlConfig.gc_foreground else "ftl.op"
            raise ConfigError(key, f"ftl.op={self.ftl.op!r} leaves pblk {spare} spare data sectors on "
                              f"{geo.nblocks} lines of {data}, fewer than the {need} its GC needs "
                              f"(ftl.gc_foreground={self.ftl.gc_foreground} line(s) and half as much again)")

    # ------------------------------------------------------------ building
    @classmethod
    def default(cls) -> Config:
        """Today's behaviour: every key at its default."""
        return cls()

    @classmethod
    def from_dict(cls, data: dict, source: str | None = None) -> Config:
        """A Config from {section: {key: value}}; missing keys keep their defaults."""
        for section, keys in data.items():
            if not isinstance(keys, dict):
                raise ConfigError(str(section), f"expected a table of keys, got {_describe(keys)}", source)
        return cls._build({s: {k: (v, source) for k, v in keys.items()} for s, keys in data.items()},
                          source, frozenset(f"{s}.{k}" for s, keys in data.items() for k in keys))

    @classmethod
    def load(cls, path: str | None = None, sets: Iterable[str] = ()) -> Config:
        """The defaults, then the TOML file at `path` (if any), then each `--set` in order."""
        raw: dict[str, dict[str, tuple[Any, str | None]]] = {}
        if path is not None:
            source = str(path)
            try:
                with open(path, "rb") as f:
                    data = tomllib.load(f)
            except OSError as e:
                raise ConfigError(None, f"cannot read it ({e.strerror or e})", source) from None
            except tomllib.TOMLDecodeError as e:
                raise ConfigError(None, f"not valid TOML: {e}", source) from None
            except UnicodeDecodeError:
                raise ConfigError(None, "not valid TOML: not UTF-8 text", source) from None
            for section, keys in data.items():
                if not isinstance(keys, dict):
                    raise ConfigError(section, "a key outside any [section] (sections: "
                                      + ", ".join(SECTIONS) + ")", source)
                _check_known(section, None, source)
                raw[section] = {k: (v, source) for k, v in keys.items()}
        cls._apply_sets(raw, sets)
        return cls._build(raw, None, frozenset(f"{s}.{k}" for s, keys in raw.items() for k in keys))

    def with_overrides(self, sets: Iterable[str]) -> Config:
        """This configuration with `--set section.key=value` items applied in order."""
        raw = {s: {k: (v, None) for k, v in keys.items()} for s, keys in self.to_dict().items()}
        sets = [sets] if isinstance(sets, str) else list(sets)
        self._apply_sets(raw, sets)
        new = {".".join(_parse_set(item)[:2]) for item in sets}
        return self._build(raw, None, self.given | new)

    @staticmethod
    def _apply_sets(raw: dict, sets: Iterable[str]) -> None:
        if isinstance(sets, str):
            sets = [sets]
        for item in sets:
            section, key, value = _parse_set(item)
            _check_known(section, key, None)
            raw.setdefault(section, {})[key] = (value, None)

    @classmethod
    def _build(cls, raw: dict, source: str | None, keys_given: frozenset = frozenset()) -> Config:
        sections = {}
        for section, keys in raw.items():
            _check_known(section, None, source)
            for key, (_, src) in keys.items():
                _check_known(section, key, src)
        for name, scls in SECTIONS.items():
            given = raw.get(name, {})
            try:
                sections[name] = scls(**{k: v for k, (v, _) in given.items()})
            except ConfigError as e:
                raise e.at(given.get((e.key or "").partition(".")[2], (None, None))[1]) from None
        try:
            return cls(**sections, given=keys_given)
        except ConfigError as e:
            sec, _, key = (e.key or "").partition(".")
            raise e.at(raw.get(sec, {}).get(key, (None, None))[1]) from None

    # ------------------------------------------------------------ printing
    def to_dict(self) -> dict:
        """{section: {key: value}} of every key, for reports and JSON."""
        return {name: getattr(self, name).to_dict() for name in SECTIONS}

    def to_toml(self, comments: bool = True) -> str:
        """Every key as TOML; `Config.load` reads it back to an equal Config."""
        out = ["# ox configuration: every key with its value (oxhost.config)"] if comments else []
        for name, scls in SECTIONS.items():
            if out:
                out.append("")
            out.append(f"[{name}]")
            for key, value in getattr(self, name).to_dict().items():
                if comments:
                    out.append(f"# {scls.doc(key)}")
                out.append(f"{key} = {_toml_value(value)}")
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------ derived values
    def to_geometry(self) -> Geometry:
        """The device geometry (`self.geometry.to_geometry()`)."""
        return self.geometry.to_geometry()

    def to_nand_timing(self) -> NandTiming:
        """The device's NAND timing (`self.nand.to_nand_timing()`)."""
        return self.nand.to_nand_timing()

    def exported_sectors(self, luns: int | None = None, geometry: Geometry | None = None) -> int:
        """Sectors pblk over `luns` LUNs (default: all) of `geometry` (default: this
        configuration's) exports at ftl.op (pblk's rule, oxhost.pblk.params)."""
        geo = geometry or self.geometry.to_geometry()
        nluns = geo.total_luns if luns is None else luns
        return pblk_rules.exported_sectors(nluns * geo.nblocks, geo.sectors_per_block, self.ftl.op)

    def appnvm_capacity_bytes(self, geometry: Geometry | None = None) -> int:
        """AppNVM's exported bytes on `geometry` (default: this configuration's):
        appnvm.capacity_bytes, or AppNVM's rule at ftl.op (oxemu.appnvm_exported_sectors,
        the same figure as pblk's over every LUN)."""
        geo = geometry or self.geometry.to_geometry()
        return self.appnvm.capacity_bytes or appnvm_exported_sectors(geo, self.ftl.op) * SECTOR_NBYTES

    def is_set(self, *keys: str) -> bool:
        """Whether a file or --set gave any of the dotted keys (or any key of a section
        named without a dot)."""
        return any(k in self.given or (("." not in k) and any(g.startswith(k + ".") for g in self.given))
                   for k in keys)

    def pblk_params(self, capacity_sectors: int = 0):
        """pblk's tunables (oxhost.pblk.PblkParams); capacity_sectors, when not 0, overrides
        the capacity ftl.op gives (a volume reopened at the size its label records)."""
        from .pblk.params import PblkParams
        f, p = self.ftl, self.pblk
        return PblkParams(op=f.op, capacity_sectors=capacity_sectors, gc_policy=f.gc_policy, gc_d=f.gc_d,
                          gc_seed=f.gc_seed, gc_background=f.gc_background, gc_foreground=f.gc_foreground,
                          rl_low_div=p.rl_low_div, write_buffer_entries=p.write_buffer_entries)

    def appnvm_params(self) -> AppNvmParams:
        """The AppNVM FTL's tunables as the device takes them (`Machine(appnvm=...)`)."""
        f, a = self.ftl, self.appnvm
        return AppNvmParams(gc_policy=f.gc_policy, gc_d=f.gc_d, gc_seed=f.gc_seed,
                            gc_background=f.gc_background, gc_foreground=f.gc_foreground,
                            write_buffer_units_per_lun=a.write_buffer_units_per_lun,
                            wear_leveling=a.wear_leveling,
                            checkpoint_interval_blocks=a.checkpoint_interval_blocks)

    def zns_params(self) -> ZnsParams:
        """The zoned namespace as the device takes it (`Machine(zns=...)`): the zone shape
        when a file or --set gave it (else what the media records), and the limits."""
        z = self.zns
        return ZnsParams(zone_luns=z.zone_luns if self.is_set("zns.zone_luns") else None,
                         zone_capacity_bytes=z.zone_capacity_bytes if self.is_set("zns.zone_capacity_bytes") else None,
                         max_open=z.max_open, max_active=z.max_active)

    def pblk_rl(self, total: int, per_line: int) -> tuple[int, int, int]:
        """pblk's rate-limiter thresholds (high, low, reserve) for `total` writable sectors
        in lines of `per_line` sectors at this configuration (oxhost.pblk.rl.thresholds:
        reserve = gc_foreground lines, high = max(total x gc_background, 2 x reserve),
        low = max(total / rl_low_div, reserve))."""
        return pblk_rl.thresholds(total, per_line, self.ftl.gc_background, self.pblk.rl_low_div,
                                  self.ftl.gc_foreground)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    return json.dumps(value)                    # a TOML basic string
