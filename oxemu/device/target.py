"""OX's set-target command (vendor admin 0xC1) of the open-channel modes (1.2 and 2.0):
the host's target -- pblk, or a plug-in FTL -- recorded in the media label, so media is
never opened as something it is not."""
import logging

from ..volt import describe
from ..volt.label import uuid_is_zero
from ..wire import MediaLabel, MediaMode, Status, TargetKind
from .prp import Transfer

log = logging.getLogger(__name__)


def set_target(dma, volt, cmd):
    """Record the host target (kind, LUN range, uuid, capacity; for a plug-in FTL its name
    and version) from the MediaLabel at PRP1 in the media label. Accepted when the label
    has none, or names the same target and LUN range (an all-zero uuid or capacity stored
    there is filled in); another target or range is INVALID_FIELD. A change of the label
    is a media mutation: NS_WRITE_PROTECTED on read-only media."""
    raw = Transfer(dma, cmd.prp1, cmd.prp2, 512).read()
    want = MediaLabel.from_buffer_copy(raw.tobytes())
    total = volt.geo.total_luns
    if want.target not in (TargetKind.PBLK, TargetKind.FTL) or not want.lun_begin <= want.lun_end < total:
        return Status.INVALID_FIELD | Status.DNR, 0
    have = volt.label()
    fields = {}
    if have.target == TargetKind.NONE:
        fields = dict(mode=MediaMode.OPEN_CHANNEL, target=want.target, lun_begin=want.lun_begin,
                      lun_end=want.lun_end, uuid=bytes(want.uuid), capacity_bytes=want.capacity_bytes,
                      ftl_name=bytes(want.ftl_name), ftl_version=want.ftl_version)
    elif (have.target, have.lun_begin, have.lun_end, bytes(have.ftl_name), have.ftl_version) == \
            (want.target, want.lun_begin, want.lun_end, bytes(want.ftl_name), want.ftl_version):
        if uuid_is_zero(have) and not uuid_is_zero(want):
            fields["uuid"] = bytes(want.uuid)
        if not have.capacity_bytes and want.capacity_bytes:
            fields["capacity_bytes"] = want.capacity_bytes
    else:
        asked = MediaLabel.from_buffer_copy(bytes(have))
        asked.target, asked.lun_begin, asked.lun_end = want.target, want.lun_begin, want.lun_end
        log.warning("OX set target refused: %s; the host asked for %s", describe(have, "the media"),
                    describe(asked, "a target").removeprefix("a target holds "))
        return Status.INVALID_FIELD | Status.DNR, 0
    if not fields:
        return Status.SUCCESS, 0
    if volt.read_only:
        return Status.NS_WRITE_PROTECTED | Status.DNR, 0
    volt.update_label(**fields)
    return Status.SUCCESS, 0
