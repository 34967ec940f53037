"""`ox chunk report|reset|write|read|copy`: liblightnvm 2.x's chunk commands (nvm_cmd_rprt,
nvm_cmd_erase, nvm_cmd_write, nvm_cmd_read, nvm_cmd_copy) against a disk file holding
Open-Channel SSD 2.0 media."""
import contextlib
import re

import click
import numpy as np

from ..lightnvm.buf import buf_fill
from ..lightnvm2 import AddrCheck, ChunkAddr, ChunkState, Device20, NvmError, addr_check, fmt, gen2dev
from .common import device_options, open_machine

def parse_addr(text: str) -> ChunkAddr:
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return ChunkAddr.from_val(int(text, 16))
    parts = text.split(":")
    if not 3 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{text!r} is neither G:P:C[:S] nor a generic 2.0 address (0x...)")
    return ChunkAddr(*map(int, parts))


def _check(addrs, geo) -> None:
    bad = addr_check(addrs, geo)
    if bad:
        names = ", ".join(f.name.lower() for f in AddrCheck if bad & f)
        raise click.ClickException(f"address outside the device geometry ({names})")


@contextlib.contextmanager
def open_device(disk, volatile, geometry, debug, *, write=False, create=False):
    """A 2.0 device on the disk file: media written through another interface is refused
    (one line, nothing written)."""
    with open_machine(disk, volatile, geometry, debug, write=write, create=create, spec="2.0") as m:
        dev = Device20.open(m)
        try:
            yield dev
        except NvmError as e:
            raise click.ClickException(str(e)) from None
        finally:
            dev.close()


def _sectors(dev, addr: ChunkAddr, count: int) -> list:
    g = dev.geo
    if count < 1 or addr.sectr + count > g.nsectr:
        raise click.BadParameter(f"sectors {addr.sectr}..{addr.sectr + count - 1} run past the chunk's "
                                 f"{g.nsectr}", param_hint="--count")
    return [addr.replace(sectr=addr.sectr + i) for i in range(count)]


STATES = {s.name.lower(): s for s in ChunkState}


@click.group("chunk")
def chunk_group():
    """Open-Channel SSD 2.0 chunks (liblightnvm 2.x nvm_cmd_*), on media made with
    `ox format --spec 2.0` (or --create with a command that writes).

    \b
    ox chunk report                     every chunk: state, wear, write pointer
    ox chunk write 0:1:3 --count 16     16 sectors at chunk 0:1:3's write pointer
    ox chunk read 0:1:3:0 --count 16    ... and back
    ox chunk copy 0:1:3:0 1:0:2 --count 16
    ox chunk reset 0:1:3                a closed chunk becomes free

    Addresses are G:P:C[:S] -- group, parallel unit, chunk and sector (logical block) --
    or generic 2.0 values (0x... as `ox chunk report --addr` prints them).
    """


@chunk_group.command("report")
@click.option("--chunk", "first", default=None, metavar="G:P:C",
              help="Report from this chunk (default: every chunk of the device).")
@click.option("--count", type=int, default=None, help="Chunks to report from --chunk (default: the rest of its PU).")
@click.option("--state", "states", multiple=True, type=click.Choice(list(STATES)),
              help="Only chunks in this state (repeatable).")
@click.option("--addr", "show_addr", is_flag=True, help="Also print each chunk's generic address.")
@device_options
def chunk_report(first, count, states, show_addr, disk, volatile, geometry, debug, create):
    """The chunk information log page (0xCA): one line per chunk -- its address, state, type,
    wear-level index (0-255), start LBA, size and write pointer (sectors)."""
    with open_device(disk, volatile, geometry, debug) as dev:
        g = dev.geo
        start = parse_addr(first) if first is not None else None
        if start is not None:
            _check([start], g)
        r = dev.rprt(start, count) if start is not None else dev.rprt()
        base = 0 if start is None else (start.pugrp * g.npunit + start.punit) * g.nchunk + start.chunk
    want = {int(STATES[s]) for s in states}
    click.echo(f"{'chunk':<10} {'state':<8} {'type':<4} {'wli':>3} {'slba':>12} {'cnlb':>6} {'wp':>6}")
    shown = 0
    for i, d in enumerate(r):
        if want and int(d["cs"]) not in want:
            continue
        gr, rest = divmod(base + i, g.npunit * g.nchunk)
        pu, c = divmod(rest, g.nchunk)
        state = ChunkState(int(d["cs"])).name.lower() if int(d["cs"]) in [int(s) for s in ChunkState] \
            else f"0x{int(d['cs']):02x}"
        line = (f"{gr}:{pu}:{c:<6} {state:<8} {'seq' if d['ct'] & 1 else 'rnd':<4} {int(d['wli']):>3} "
                f"0x{int(d['slba']):010x} {int(d['cnlb']):>6} {int(d['wp']):>6}")
        if show_addr:
            line += f"  {fmt(ChunkAddr(gr, pu, c))}"
        click.echo(line)
        shown += 1
    counts = {s: int(np.count_nonzero(r["cs"] == int(v))) for s, v in STATES.items()}
    click.echo(f"{shown} of {r.size} chunk(s) shown; " + ", ".join(f"{n} {s}" for s, n in counts.items()))


@chunk_group.command("reset")
@click.argument("addrs", nargs=-1, required=True)
@device_options
def chunk_reset(addrs, disk, volatile, geometry, debug, create):
    """Reset chunks (ADDRS name chunks: G:P:C): a closed chunk becomes free; free and open
    chunks cannot be reset, and a chunk whose programs failed goes offline instead."""
    addrs = [parse_addr(a).replace(sectr=0) for a in addrs]
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        _check(addrs, dev.geo)
        desc = dev.erase(addrs, with_descriptors=True)
    for a, d in zip(addrs, desc):
        click.echo(f"reset {a.pugrp}:{a.punit}:{a.chunk}: {ChunkState(int(d['cs'])).name.lower()}, "
                   f"wear index {int(d['wli'])}")


@chunk_group.command("write")
@click.argument("addr")
@click.option("--count", type=int, default=None, help="Sectors to write (default: ws_opt).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False),
              help="Data to write (zero-padded); default: a seeded pattern.")
@click.option("--seed", default=0, show_default=True, help="Seed of the generated pattern.")
@click.option("--meta", "meta_seed", type=int, default=None, help="Also write OOB metadata from this seed.")
@device_options
def chunk_write(addr, count, input_path, seed, meta_seed, disk, volatile, geometry, debug, create):
    """Write COUNT sectors at ADDR: G:P:C writes at the chunk's write pointer, G:P:C:S at
    sector S (which must be the write pointer). Whole ws_min units only."""
    a = parse_addr(addr)
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        g = dev.geo
        _check([a], g)
        if len(addr.split(":")) == 3:
            a = a.replace(sectr=int(dev.rprt(a, 1)["wp"][0]))
        n = g.ws_opt if count is None else count
        addrs = _sectors(dev, a, n)
        data = np.zeros(n * g.nbytes, dtype=np.uint8)
        if input_path:
            raw = np.fromfile(input_path, dtype=np.uint8, count=data.size)
            data[:raw.size] = raw
        else:
            buf_fill(data, seed)
        meta = buf_fill(np.empty(n * g.nbytes_oob, np.uint8), meta_seed) if meta_seed is not None else None
        dev.write(addrs, data, meta=meta)
        wp = int(dev.rprt(a, 1)["wp"][0])
    click.echo(f"wrote {n} sector(s) to chunk {a.pugrp}:{a.punit}:{a.chunk} from sector {a.sectr}; "
               f"write pointer {wp}")


@chunk_group.command("read")
@click.argument("addr")
@click.option("--count", type=int, default=1, show_default=True, help="Sectors to read.")
@click.option("--output", type=click.Path(dir_okay=False), help="Write the data to this file.")
@click.option("--meta", "show_meta", is_flag=True, help="Also print each sector's OOB metadata (hex).")
@device_options
def chunk_read(addr, count, output, show_meta, disk, volatile, geometry, debug, create):
    """Read COUNT sectors from ADDR (G:P:C:S). The last mw_cunits sectors written to an open
    chunk cannot be read yet (UNWRITTEN_BLOCK, 0x4287)."""
    a = parse_addr(addr)
    with open_device(disk, volatile, geometry, debug) as dev:
        _check([a], dev.geo)
        addrs = _sectors(dev, a, count)
        data, meta = dev.read(addrs, with_meta=show_meta)
        sos = dev.geo.nbytes_oob
    if output:
        data.tofile(output)
        click.echo(f"read {count} sector(s): {data.nbytes} bytes written to {output}")
    else:
        import crc32c
        click.echo(f"read {count} sector(s): {data.nbytes} bytes, crc32c 0x{crc32c.crc32c(data.tobytes()):08x}, "
                   f"{np.count_nonzero(data)} non-zero bytes")
    if show_meta:
        for i, x in enumerate(addrs):
            click.echo(f"meta {x.pugrp}:{x.punit}:{x.chunk}:{x.sectr}: {meta[i * sos:(i + 1) * sos].tobytes().hex()}")


@chunk_group.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option("--count", type=int, default=None, help="Sectors to copy (default: ws_opt).")
@device_options
def chunk_copy(src, dst, count, disk, volatile, geometry, debug, create):
    """Copy COUNT sectors from SRC (G:P:C:S) to DST inside the device, OOB included: DST is
    G:P:C (its write pointer) or G:P:C:S at the write pointer. No data crosses the bus."""
    s, d = parse_addr(src), parse_addr(dst)
    with open_device(disk, volatile, geometry, debug, write=True, create=create) as dev:
        g = dev.geo
        _check([s, d], g)
        if len(dst.split(":")) == 3:
            d = d.replace(sectr=int(dev.rprt(d, 1)["wp"][0]))
        n = g.ws_opt if count is None else count
        dev.copy(_sectors(dev, s, n), _sectors(dev, d, n))
    click.echo(f"copied {n} sector(s) from {s.pugrp}:{s.punit}:{s.chunk}:{s.sectr} to "
               f"{d.pugrp}:{d.punit}:{d.chunk}:{d.sectr} (0x{gen2dev(d, g):x})")


def register(main):
    main.add_command(chunk_group)
