"""`ox ftl new` and `ox ftl check`: start an FTL of your own from the template, and run the
FTL contract's conformance checks against it (or against pblk and AppNVM)."""
import json
import os
import re
import sys

import click

SIDES = ("host", "device")


@click.group("ftl")
def ftl_group():
    """Your own FTL in one Python file (the FTL API: docs/ftl-api.md).

    \b
    ox ftl new my_ftl.py                        a working page-mapped FTL to start from
    ox ftl check my_ftl.py:PageFtl --side both  the contract, rule by rule
    ox mount /mnt/ox --ftl my_ftl.py:PageFtl --side host    (or --side device)
    """


@ftl_group.command("new")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def ftl_new(path, force):
    """Write a small, commented, working FTL to PATH (a .py file) to start from.

    It is the template FTL of this project -- page mapping, greedy GC, recovery from
    the OOB, correct flush semantics -- under its own name (the file's stem, recorded in
    the media label: media your FTL writes is refused by any other FTL, and by the
    template). It passes `ox ftl check` on both sides as written."""
    if not path.endswith(".py"):
        raise click.BadParameter(f"{path!r}: an FTL is a Python file, name it NAME.py", param_hint="PATH")
    stem = os.path.splitext(os.path.basename(path))[0]
    if not stem.isidentifier():
        raise click.BadParameter(f"{path!r}: the file name must be a Python identifier (letters, digits, _)",
                                 param_hint="PATH")
    if os.path.exists(path) and not force:
        raise click.ClickException(f"{path}: exists; pass --force to overwrite it")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise click.ClickException(f"{parent}: no such directory")
    from oxftl import template
    with open(template.__file__) as f:
        src = f.read()
    src = src.replace("my_ftl.py", os.path.basename(path))
    src, n = re.subn(r'^    name = "template"$', f'    name = "{stem[:32]}"', src, count=1, flags=re.M)
    assert n == 1, "the template's name line moved"
    with open(path, "w") as f:
        f.write(src)
    click.echo(f"ox: wrote {path} ({src.count(chr(10))} lines, FTL {stem[:32]!r}, class PageFtl). Next:\n"
               f"  ox ftl check {path}:PageFtl --side both\n"
               f"  ox mount MOUNTPOINT --ftl {path}:PageFtl --side host      (or --side device)")


def _modes(spec: str, side: str, iface: str | None = None) -> list[str]:
    from ..stack import ALIASES, MODES, make_mode
    if spec in MODES or spec in ALIASES:
        return [make_mode(spec, spec=iface or ALIASES.get(spec, (None, "1.2"))[1])]
    if ":" not in spec:
        raise click.BadParameter(f"{spec!r} is neither pblk, appnvm, zoned nor FILE.py:Class / "
                                 f"package.module:Class", param_hint="FTL")
    if iface not in (None, "1.2") and side != "host":
        raise click.BadParameter(f"--spec {iface} places the FTL in the host: give --side host", param_hint="--spec")
    return [make_mode("ftl", spec, s, iface or "1.2") for s in (SIDES if side == "both" else (side,))]


@ftl_group.command("check")
@click.argument("ftl", metavar="FTL")
@click.option("--side", type=click.Choice(["host", "device", "both"]), default="both", show_default=True,
              help="Where the FTL runs: in the host over open-channel (pblk's place), in the device behind a "
                   "plain namespace (AppNVM's place), or both. Ignored for pblk, appnvm and zoned.")
@click.option("--rule", "rules", multiple=True, metavar="RULE",
              help="Run only this rule (repeatable); default all. See the list below.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Everything (workloads, cut points) follows from it: a failure replays exactly.")
@click.option("--geometry", default=None, metavar="CHxLUNxBLKxPG",
              help="Media geometry (default 2x2x16x16: small, so GC runs at once).")
@click.option("--spec", "iface", type=click.Choice(["1.2", "2.0", "zns"]), default=None,
              help="The interface a host-side FTL speaks: 1.2 (open-channel, default), 2.0, or zns (over the "
                   "zones of a ZNS device; needs --side host).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False),
              help="Write the results as JSON (per stack: rules run, failures with rule, what, replay).")
def ftl_check(ftl, side, rules, seed, geometry, iface, json_path):
    """Check an FTL against the FTL contract, rule by rule, through the real stack.

    FTL is FILE.py:Class or package.module:Class (a subclass of oxftl.Ftl), or pblk,
    appnvm or zoned (the built-ins; zoned is the zoned host FTL on a ZNS device). Each
    rule is a short scenario on a small disk file, power cuts included; a failure prints
    the rule it broke and the command that runs that rule alone again. Exits 1 when any
    rule is broken.

    \b
    Rules:
      read-after-write  a sector reads back what was last written to it
      overwrite         of several writes to a sector, the newest is what it reads
      trim              trimmed and never-written sectors read as zeros
      media-errors      an unreadable sector is an error (EIO), never zeros or other data
      flush-durability  after a power cut, a sector holds its last flushed version or newer
      trim-durability   a flushed trim survives a power cut (zeros, never older data)
      full-overwrite    the whole volume can be written again and again (no leaked space)
      gc-full-drive     on a full drive GC keeps every valid sector, cuts during GC included
      cut-in-recovery   a power cut inside recovery loses nothing
    """
    import logging
    import time

    from oxftl import FtlLoadError, load_ftl

    from ..ftl.check import RULES, Checker
    from .common import parse_geometry

    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise click.BadParameter(f"unknown rule {unknown[0]!r} (rules: {', '.join(RULES)})", param_hint="--rule")
    from ..stack import StackError
    try:
        modes = _modes(ftl, side, iface)
    except StackError as e:
        raise click.BadParameter(str(e), param_hint="--spec") from None
    if ":" in ftl:
        try:
            load_ftl(ftl)                        # one line now, not one failure per rule
        except FtlLoadError as e:
            raise click.ClickException(str(e)) from None
    geo = parse_geometry(geometry)
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        for name in ("oxemu", "oxhost", "oxftl"):  # power cuts on purpose: their warnings are expected
            logging.getLogger(name).setLevel(logging.ERROR)
    report, broken = {}, 0
    for mode in modes:
        from ..stack import mode_name
        name = mode_name(mode)
        t0 = time.perf_counter()

        def progress(rule, what, name=name, t0=t0):
            mark = "ok" if what is None else "BROKEN"
            click.echo(f"  {name}: {rule:<17} {mark} ({time.perf_counter() - t0:.1f} s)", err=True)
        failures = Checker(mode, seed=seed, geometry=geo).run(rules or None, progress=progress)
        broken += len(failures)
        report[name] = dict(mode=mode, rules=list(rules or RULES), failures=[f.as_dict() for f in failures],
                            wall_s=round(time.perf_counter() - t0, 1))
        ran = len(rules or RULES)
        click.echo(f"{name}: {ran - len(failures)} of {ran} rules kept" +
                   ("" if not failures else f", {len(failures)} broken"))
        for f in failures:
            click.echo(f"  BROKEN {f.rule}: {RULES[f.rule]}\n    {f.what}\n    replay: {f.replay}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(report, f, indent=1)
    if broken:
        sys.exit(1)


def register(main: click.Group) -> None:
    main.add_command(ftl_group)
