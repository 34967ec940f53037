"""Which stacks a compare run sets side by side: any stack mode of oxhost.stack -- pblk,
AppNVM, a plug-in FTL in the host or in the device -- checked before anything runs, the
short names reports and file names use, what each one is in words, and the pairs that
run one FTL on both sides of the bus (the placement figure)."""
from __future__ import annotations

import os

from ..stack import StackError, mode_name, normalize_mode, parse_mode

DEFAULT = ("pblk", "appnvm")
_WHAT = {"pblk": "host FTL (pblk over open-channel)", "appnvm": "device FTL (AppNVM)"}
_SPEC = {"1.2": "OCSSD 1.2", "2.0": "OCSSD 2.0 chunks", "zns": "a zoned namespace"}


def placement_modes(ftl: str) -> list[str]:
    """`--ftl FTL --side both`: the same FTL in the host and in the device."""
    return [normalize_mode(f"{ftl}@host"), normalize_mode(f"{ftl}@device")]


def names(modes) -> dict[str, str]:
    """{mode: short name} for reports and file names: oxhost.stack.mode_name (pblk, appnvm,
    Class@side), qualified by the FTL's file or module where two FTLs share a class name
    (v1.MyFtl@host beside v2.MyFtl@host)."""
    modes = list(dict.fromkeys(modes))
    short = {m: mode_name(m) for m in modes}
    out = {}
    for m in modes:
        name = short[m]
        if sum(1 for n in short.values() if n == name) > 1:
            p = parse_mode(m)
            where = p.ftl.rpartition(":")[0]
            stem = os.path.splitext(os.path.basename(where))[0] if where.endswith(".py") else where
            name = f"{stem}.{name}"
        base, i = name, 2
        while name in out.values():
            name, i = f"{base}#{i}", i + 1
        out[m] = name
    return out


def describe(mode: str) -> str:
    """What a stack is, in words (the report's list of stacks); a mode this version does
    not know (results written by another) is its own description."""
    try:
        m = parse_mode(mode)
    except StackError:
        return mode
    via = f" through {_SPEC[m.spec]}" if m.spec != "1.2" else ""
    if m.ftl is None:
        return _WHAT[m.kind] + via
    where = ("in the host, over " + ("the zones of a zoned namespace" if m.spec == "zns" else "open-channel" + via)
             if m.side == "host" else "in the device, behind a plain NVMe namespace")
    return f"plug-in FTL {m.ftl} {where}"


def placement_pairs(modes: dict) -> list[dict]:
    """The stacks that run one FTL on both sides: [{ftl, host, device}] from {name: mode},
    `ftl` the host stack's name without its side (PageFtl, PageFtl+2.0: a host-side FTL
    over another interface pairs with the same device-side stack too)."""
    out = []
    parsed = {}
    for n, m in modes.items():
        try:
            parsed[n] = parse_mode(m)
        except StackError:
            continue                    # a mode this version does not know pairs with nothing
    for dn, d in parsed.items():
        if d.kind != "ftl@device":
            continue
        for hn, h in parsed.items():
            if h.kind == "ftl@host" and h.ftl == d.ftl:
                label = hn.replace("@host", "", 1)
                out.append(dict(ftl=label, host=hn, device=dn))
    return out


__all__ = ["DEFAULT", "StackError", "describe", "names", "placement_modes", "placement_pairs"]
