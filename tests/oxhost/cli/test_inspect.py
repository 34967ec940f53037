"""`ox inspect` after power-cut campaigns, as a user runs it: what it reports agrees with
what the stacks report (valid sectors per pblk line and per AppNVM block, erase counts),
the disk stays byte-identical, and mistakes get one line."""
import json
import os
import re
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from oxemu import Geometry, Machine
from oxhost.cli import main
from oxhost.inspect import DOC_KEYS
from oxhost.inspect.png import BLOCK_COLOURS, CELL_IN, DPI, MARGIN_IN, figure_size
from oxhost.stack import open_stack
from oxhost.torture import Config, ModeCampaign, default_geometry
from tests.helpers import file_digest

CUTS = 3


@pytest.fixture(scope="module")
def tortured(tmp_path_factory):
    """Per mode: a disk left right after a power cut of a campaign ('cut'), and the same
    disk after the campaign's final overwrite and clean stop ('clean')."""
    d = tmp_path_factory.mktemp("torture")
    out = {}
    for mode in ("pblk", "appnvm"):
        disk = str(d / f"{mode}.disk")
        camp = ModeCampaign(mode, Config(modes=(mode,), cuts=CUTS, seed=11), disk)
        r = 0
        while camp.report.cuts < CUTS:           # rounds until the last one ended in a cut
            camp.round(r)
            r += 1
        assert camp.report.violations == []
        cut = str(d / f"{mode}-cut.disk")
        shutil.copyfile(disk, cut)
        camp.rounds = r
        camp.final_overwrite()
        out[mode] = {"cut": cut, "clean": disk}
    return out


def ox(*args):
    res = CliRunner().invoke(main, list(args))
    return res


def inspect_json(disk) -> dict:
    res = ox("inspect", "--json", "--disk", disk)
    assert res.exit_code == 0, res.output + res.stderr
    return json.loads(res.stdout)


def _grid(doc, key) -> np.ndarray:
    g = doc["geometry"]
    vals = [max(b[key]) if isinstance(b[key], list) else b[key] for b in doc["blocks"]]
    return np.array(vals).reshape(g["nchannels"] * g["nluns"], g["nblocks"])


@pytest.mark.parametrize("when", ["cut", "clean"])
def test_pblk_lines_agree_with_the_stack_and_erase_counts_with_the_machine(tortured, tmp_path, when):
    disk = tortured["pblk"][when]
    before = file_digest(disk)
    doc = inspect_json(disk)
    assert file_digest(disk) == before
    assert tuple(doc) == DOC_KEYS and doc["appnvm"] is None
    with Machine(lnvm=1, volt=0, disk=disk, geometry=default_geometry(), readonly=True) as m:
        assert (_grid(doc, "erase_count") == m.erase_counts()).all()
    copy = str(tmp_path / "copy.disk")
    shutil.copyfile(disk, copy)
    with open_stack(mode="pblk", disk=copy) as st:      # the next mount, on a copy
        vsc = st.blockdev.l2p.vsc.tolist()
        stats = st.blockdev.stats()
    lines = doc["pblk"]["lines"]
    assert [ln["valid_sectors"] for ln in lines] == vsc
    assert doc["pblk"]["mapped_sectors"] == stats["mapped_sectors"]
    assert sum(ln["state"] == "closed" for ln in lines) >= 1
    assert doc["stop"] == ("unsafe" if when == "cut" else "clean")
    assert all(b["line"] == b["blk"] for b in doc["blocks"])       # every LUN is the target's


@pytest.mark.parametrize("when", ["cut", "clean"])
def test_appnvm_blocks_agree_with_the_device(tortured, tmp_path, when):
    disk = tortured["appnvm"][when]
    before = file_digest(disk)
    doc = inspect_json(disk)
    assert file_digest(disk) == before
    assert doc["pblk"] is None and doc["appnvm"]["ftl"]["error"] is None
    copy = str(tmp_path / "copy.disk")
    shutil.copyfile(disk, copy)
    with Machine(lnvm=0, volt=0, disk=copy, geometry=default_geometry()) as m:   # the device's start
        assert (_grid(doc, "valid_sectors") == m.block_valid_sectors()).all()
        if when == "clean":                 # a start after a clean stop writes (and erases) nothing
            assert (_grid(doc, "erase_count") == m.erase_counts()).all()
    app = doc["appnvm"]
    assert app["ftl"]["clean"] is (when == "clean")
    assert sum(c["used_by_recovery"] for c in app["checkpoints"]) == 1
    assert {b["stream"] for b in doc["blocks"] if b["valid_sectors"]} <= {"user", "gc"}


def test_text_report_shows_grid_lines_and_checkpoints(tortured):
    res = ox("inspect", "--disk", tortured["pblk"]["cut"])
    assert res.exit_code == 0 and res.stderr == ""
    out = res.stdout.splitlines()
    g = default_geometry()
    grid = [ln for ln in out if re.fullmatch(r" *\d+/\d+ +\S+", ln)]
    assert len(grid) == g.total_luns
    assert all(len(ln) == 9 + g.nblocks and set(ln[9:]) <= set(".o#BGR") for ln in grid)
    assert any(ln.startswith("  line  state") for ln in out)
    assert sum(" open " in ln for ln in out if ln[:7].strip().isdigit()) == 1      # the cut left one open
    res = ox("inspect", "--disk", tortured["appnvm"]["clean"])
    assert res.exit_code == 0
    assert "valid, in use" in res.stdout and "trim journal" in res.stdout


def test_png_decodes_with_one_cell_per_block_in_its_state_colour(tortured, tmp_path):
    from matplotlib.image import imread

    for mode in ("pblk", "appnvm"):
        png = str(tmp_path / f"{mode}.png")
        res = ox("inspect", "--json", "--png", png, "--disk", tortured[mode]["cut"])
        assert res.exit_code == 0, res.output + res.stderr
        doc = json.loads(res.stdout)
        img = imread(png)
        w, h = figure_size(doc)
        assert img.shape[:2] == (h, w)
        _check_cells(doc, img)


def _check_cells(doc, img) -> None:
    """Each block's cell, sampled off its centre (away from letters and grid lines), has
    the colour of the block's state."""
    g = doc["geometry"]
    nrows = g["nchannels"] * g["nluns"]
    h = img.shape[0]
    cell = CELL_IN * DPI
    seen = set()
    for b in doc["blocks"]:
        r, c = b["ch"] * g["nluns"] + b["lun"], b["blk"]
        x = MARGIN_IN[0] * DPI + (c + 0.5) * cell - cell * 0.3
        y = h - (MARGIN_IN[2] * DPI + (nrows - r - 0.5) * cell) - cell * 0.3
        rgb = img[int(round(y)), int(round(x)), :3]
        assert np.allclose(rgb, BLOCK_COLOURS[b["state"]], atol=0.02), (b, rgb)
        seen.add(b["state"])
    assert len(seen) >= 2


def test_bad_blocks_are_drawn_and_listed(tmp_path):
    disk = str(tmp_path / "ox.disk")
    assert ox("format", "--mode", "pblk", "--yes", "--disk", disk, "--geometry", "2x2x8x16").exit_code == 0
    res = ox("bbt", "mark", "grown", "0:1:0:3", "0:1:1:3", "--disk", disk)
    assert res.exit_code == 0, res.output + res.stderr
    assert ox("bbt", "mark", "bad", "1:0:1:6", "--disk", disk).exit_code == 0
    png = str(tmp_path / "p.png")
    res = ox("inspect", "--json", "--png", png, "--disk", disk)
    doc = json.loads(res.stdout)
    states = {(b["ch"], b["lun"], b["blk"]): b["state"] for b in doc["blocks"]}
    assert states[(0, 1, 3)] == "grown_bad" and states[(1, 0, 6)] == "bad"
    assert doc["summary"]["states"] == {"free": 30, "open": 0, "full": 0, "bad": 1, "grown_bad": 1, "reserved": 0}
    assert doc["pblk"]["lines"][3]["bad_luns"] == [1] and doc["pblk"]["lines"][6]["bad_luns"] == [2]
    from matplotlib.image import imread
    _check_cells(doc, imread(png))
    text = ox("inspect", "--disk", disk).stdout
    assert "    0/1  ...G....\n" in text and "    1/0  ......B.\n" in text


def test_a_missing_disk_is_one_line_and_creates_nothing(tmp_path):
    disk = str(tmp_path / "none.disk")
    res = ox("inspect", "--disk", disk)
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "no such disk file" in res.stderr
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"hello, not a disk\n" * 500])
def test_a_file_that_is_not_an_ox_disk_is_one_line_and_left_alone(tmp_path, content):
    disk = tmp_path / "x.disk"
    disk.write_bytes(content)
    res = ox("inspect", "--disk", str(disk), "--png", str(tmp_path / "x.png"))
    assert res.exit_code == 1 and res.stderr.startswith("ox: error: ") and res.stderr.count("\n") == 1
    assert "not an OX disk file" in res.stderr
    assert disk.read_bytes() == content and sorted(os.listdir(tmp_path)) == ["x.disk"]


def test_a_disk_a_writer_holds_is_refused_in_one_line(tmp_path):
    disk = str(tmp_path / "ox.disk")
    assert ox("format", "--mode", "appnvm", "--yes", "--disk", disk, "--geometry", "2x2x8x16").exit_code == 0
    with Machine(lnvm=0, volt=0, disk=disk, geometry=Geometry.small()):
        res = ox("inspect", "--disk", disk)
    assert res.exit_code == 1 and res.stderr.count("\n") == 1 and "in use" in res.stderr
    assert ox("inspect", "--disk", disk).exit_code == 0        # released: readable again


def test_png_onto_the_disk_itself_is_refused(tortured):
    disk = tortured["pblk"]["clean"]
    before = file_digest(disk)
    res = ox("inspect", "--disk", disk, "--png", disk)
    assert res.exit_code == 2 and "the disk file itself" in res.stderr
    assert file_digest(disk) == before


def _keys(doc, skip=("counters", "recovery", "geometry")) -> set:
    """Every key of a document, nested, except inside the free-form dicts."""
    out = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(k)
            if k not in skip:
                out |= _keys(v, skip)
    elif isinstance(doc, list):
        for v in doc:
            out |= _keys(v, skip)
    return out


def test_help_documents_every_key_of_the_json_document(tortured):
    res = ox("inspect", "--help")
    assert res.exit_code == 0
    words = set(re.findall(r"[a-z_]+", res.stdout))
    for mode in ("pblk", "appnvm"):
        missing = _keys(inspect_json(tortured[mode]["cut"])) - words
        assert not missing, f"undocumented keys: {sorted(missing)}"


@pytest.mark.parametrize("side", ["host", "device"])
def test_inspect_names_the_plugin_ftl_a_disk_holds_and_its_blocks(tmp_path, side):
    disk = str(tmp_path / "ftl.disk")
    with open_stack(mode=f"oxftl.template:PageFtl@{side}", disk=disk, geometry=Geometry.small()) as st:
        st.blockdev.write(0, b"F" * (1 << 20))
        erases = st.machine.erase_counts()
    before = file_digest(disk)
    doc = inspect_json(disk)
    assert doc["label"]["ftl"] == {"name": "template", "version": 1}
    assert doc["label"]["mode"] == ("open-channel" if side == "host" else "device-ftl")
    assert doc["summary"]["states"]["open"] > 0
    assert file_digest(disk) == before and erases.max() == 0
