"""A version-1 VOLT disk file, as the build before the media label wrote it."""
import ctypes

from oxemu import Geometry
from oxemu.volt.format import _V1Header
from oxemu.volt.store import MAGIC, _header_crc
from oxemu.wire import BlockState


def _align(n: int) -> int:
    return (n + 4095) // 4096 * 4096


def make_v1_disk(path, geo: Geometry, grown=(), erases=None) -> None:
    """Write a v1 file: grown = {(ch, lun, blk, pl)} marked grown bad; erases = {bp: count}."""
    n = geo.block_planes
    data_off = _align(4096 + 7 * n)
    oob_off = _align(data_off + geo.data_nbytes)
    h = _V1Header(version=1, header_nbytes=4096, state_off=4096, data_off=data_off, oob_off=oob_off,
                  file_nbytes=_align(oob_off + geo.oob_total_nbytes), clean=1,
                  nchannels=geo.nchannels, nluns=geo.nluns, nblocks=geo.nblocks, npages=geo.npages,
                  nplanes=geo.nplanes, nsectors=geo.nsectors, sector_nbytes=geo.sector_nbytes,
                  oob_nbytes=geo.oob_nbytes)
    ctypes.memmove(ctypes.addressof(h), MAGIC, len(MAGIC))
    h.crc = _header_crc(h)

    def bp(ch, lun, blk, pl):
        return ((ch * geo.nluns + lun) * geo.nblocks + blk) * geo.nplanes + pl
    with open(path, "wb") as f:
        f.truncate(h.file_nbytes)
        f.write(bytes(h))
        for a in grown:
            f.seek(4096 + bp(*a))
            f.write(bytes([BlockState.GRWN_BAD]))
        for a, count in (erases or {}).items():
            f.seek(4096 + 3 * n + 4 * bp(*a))
            f.write(count.to_bytes(4, "little"))
