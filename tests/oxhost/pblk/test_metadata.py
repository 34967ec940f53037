"""smeta / emeta / OOB layouts: pack, unpack, CRC, sizing as pblk computes it."""
import numpy as np
import pytest

from oxhost.pblk.metadata import (
    LINE_EMETA,
    LINE_HEADER,
    LINE_SMETA,
    OOB,
    PBLK_MAGIC,
    Kind,
    MetaError,
    MetaSizes,
    pack_emeta,
    pack_oob,
    pack_smeta,
    unpack_emeta,
    unpack_oob,
    unpack_smeta,
)

UUID = bytes(range(16))


def sizes(nluns=4, nlines=16, sec_per_line=512):
    return MetaSizes(nluns=nluns, nlines=nlines, unit_secs=8, sec_per_line=sec_per_line)


def test_metadata_structs_have_pblk_sizes():
    assert LINE_HEADER.itemsize == 32
    assert LINE_SMETA.itemsize == 64          # lun_bitmap[] starts 8-aligned after rsvd[2]
    assert LINE_EMETA.itemsize == 72
    assert OOB.itemsize == 16


def test_metadata_emeta_grows_a_unit_at_a_time_until_it_fits():
    # default geometry: 32 LUNs, 1024-sector chunks -> 32768-sector lines, 32 lines
    sz = sizes(nluns=32, nlines=32, sec_per_line=32768)
    assert sz.smeta_units == 1
    assert sz.emeta_units == 9                # 1 + 64 + 1 sectors need 9 units of 8
    assert sz.emeta_sections == (1, 64, 1)
    assert sz.nr_lba_slots == 32768 - 72
    assert sizes().emeta_units == 1


def test_metadata_smeta_round_trip():
    sz = sizes()
    luns = np.array([True, False, True, True])
    buf = pack_smeta(sz, line_id=5, seq=77, prev_id=4, uuid=UUID, luns=luns)
    assert buf.size == 8 * 4096
    assert int(buf[4:8].view("<u4")[0]) == PBLK_MAGIC
    sm = unpack_smeta(sz, buf, line_id=5)
    assert (sm.line_id, sm.seq, sm.prev_id, sm.uuid) == (5, 77, 4, UUID)
    assert sm.luns.tolist() == luns.tolist()


@pytest.mark.parametrize("offset", [0, 10, 40, 64])
def test_metadata_smeta_crc_catches_a_flipped_byte(offset):
    sz = sizes()
    buf = pack_smeta(sz, 5, 77, 4, UUID, np.ones(4, bool))
    buf[offset] ^= 0x01
    with pytest.raises(MetaError):
        unpack_smeta(sz, buf, 5)


def test_metadata_smeta_of_another_line_is_refused():
    sz = sizes()
    buf = pack_smeta(sz, 5, 77, 4, UUID, np.ones(4, bool))
    with pytest.raises(MetaError, match="line 5"):
        unpack_smeta(sz, buf, 6)


def test_metadata_blank_page_is_not_smeta():
    with pytest.raises(MetaError, match="magic"):
        unpack_smeta(sizes(), np.zeros(4096, np.uint8))


def test_metadata_emeta_round_trip():
    sz = sizes()
    lbas = np.full(sz.nr_lba_slots, -1, np.int64)
    lbas[8:20] = np.arange(100, 112)
    vsc = np.arange(16, dtype=np.uint32)
    bad = np.array([False, True, False, False])
    buf = pack_emeta(sz, 3, 9, 2, 4, UUID, bad, (10, 20, 30), lbas, vsc)
    em = unpack_emeta(sz, buf, 3)
    assert (em.line_id, em.seq, em.prev_id, em.next_id, em.uuid) == (3, 9, 2, 4, UUID)
    assert em.wa == (10, 20, 30)
    assert em.bad.tolist() == bad.tolist()
    assert em.nr_valid_lbas == 12 and em.nr_lbas == sz.nr_lba_slots
    assert (em.lbas == lbas).all()
    assert (em.vsc == vsc).all()


def test_metadata_emeta_crc_covers_the_lba_list():
    sz = sizes()
    buf = pack_emeta(sz, 3, 9, 2, 4, UUID, np.zeros(4, bool), (0, 0, 0),
                     np.zeros(sz.nr_lba_slots, np.int64), np.zeros(16, np.uint32))
    buf[4096 + 8 * 7] ^= 0x80                 # inside the LBA list (second sector)
    with pytest.raises(MetaError, match="CRC"):
        unpack_emeta(sz, buf, 3)


def test_metadata_oob_carries_lba_sequence_and_kind():
    meta = pack_oob(123456, np.array([Kind.USER, Kind.GC, Kind.PAD], np.uint8), np.array([7, 8, -1]))
    seq, kind, lba = unpack_oob(meta.view(np.uint8))
    assert seq.tolist() == [123456] * 3
    assert kind.tolist() == [Kind.USER, Kind.GC, Kind.PAD]
    assert lba.tolist() == [7, 8, -1]
    assert meta.view(np.uint8).size == 3 * 16
