"""report.html, the report people share: opened in real headless Chromium (Debian's
`chromium`) from a folder without the PNG files, it renders with no console error, every
image loaded and the headline table present, and fetches nothing; its plots are ones
people print (LUNs labelled ch/lun, queue depths as integers). One steady-state run of
three workloads on two stacks serves the module (about 20 s; Chromium about 2 s)."""
import json
import re
import shutil
from pathlib import Path

import pytest

from oxhost.compare import Plan, figures
from oxhost.compare.fiojob import parse_fio_job
from oxhost.compare.runner import run_compare
from oxhost.compare.workloads import Workload
from oxhost.config import Config
from tests.chromium import Browser
from tests.conftest import require_tools

TINY = ["geometry.nblocks=16", "geometry.npages=16"]         # 2x2x16x16 under --quick
CHECK = """(() => {
  const imgs = Array.from(document.images);
  const head = document.querySelector("table#headline-figures");
  return {images: imgs.length, loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
          headline: head ? Array.from(head.rows).map(r => Array.from(r.cells).map(c => c.textContent)) : null,
          title: document.title, h2: Array.from(document.querySelectorAll("h2")).map(h => h.textContent)};
})()"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    plan = Plan.quick(Config.load(None, TINY), qds=(1, 4), precondition="steady", max_rounds=8)
    fio = parse_fio_job("[reader]\nrw=randread\nbs=4k\nnumber_ios=300\n[writer]\nrw=randwrite\nbs=64k\niodepth=4\n"
                        "number_ios=300\n", device_bytes=plan.config.exported_sectors() * 4096)
    tenants = Workload("tenants", "a reader and a writer", kind="fio", fio_jobs=fio.jobs, qds=(4,))
    wls = [w for w in plan.workloads if w.name in ("randwrite", "interference")] + [tenants]
    run_compare(plan.with_workloads(wls), out, stacks=("pblk", "appnvm"), progress=False, echo=lambda *a: None)
    return out, json.loads((out / "results.json").read_text())


def test_report_html_renders_in_headless_chromium_without_the_pngs(report, tmp_path):
    require_tools("chromium")
    out, results = report
    alone = tmp_path / "shared"
    alone.mkdir()
    shutil.copy(out / "report.html", alone / "report.html")          # mailed on its own: no PNG beside it
    md = (out / "report.md").read_text()
    with Browser() as browser:
        page = browser.open((alone / "report.html").as_uri(), CHECK)
    v = page.value
    assert page.errors == [] and page.failed == [], (page.errors, page.failed)
    assert v["images"] == len(re.findall(r"^!\[", md, re.M)) >= 12 and v["loaded"] == v["images"], v
    assert v["title"] == "ox compare -- quick run"
    head = v["headline"]
    assert head[0][:2] == ["workload", "QD"] and "pblk MiB/s" in head[0] and "appnvm p99.9 us" in head[0]
    assert [r[0] for r in head[1:]] == ["randwrite", "interference", "tenants"]
    for h2 in ("Headline figures", "Preconditioning", "Over-provisioning against theory", "Tenants",
               "Fresh out of the box and steady", "The whole configuration"):
        assert h2 in v["h2"], h2
    others = [u for u in page.requests if not u.startswith(("data:", "file:"))]
    assert others == [] and sum(u.startswith("file:") for u in page.requests) == 1      # the page, nothing else


def test_report_html_is_one_self_contained_file_with_everything_in_it(report):
    out, results = report
    html = (out / "report.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["'](?!data:|#)""", html)
    assert html.count('src="data:image/png;base64,') == len(re.findall(r"^!\[", (out / "report.md").read_text(), re.M))
    for png in ("convergence-randwrite.png", "convergence-interference.png", "fob_steady.png",
                "noisy_neighbour.png", "tenants-tenants.png", "heatmap_erase.png"):
        assert f'alt="{png}"' in html, png
    assert '<table id="tenants">' in html or 'id="tenants"' in html
    assert "[ftl]" in html and "gc_policy = &quot;greedy&quot;" in html            # the whole configuration
    for stack in ("pblk", "appnvm"):
        assert results["steady"][stack]["randwrite"]["rounds"] >= 5
        assert results["stacks"][stack]["tenants"]["4"]["fairness"][0]["jain"] is not None


def test_the_chromium_check_sees_a_broken_page(tmp_path):
    """The check can fail: a missing image and a console error are both reported."""
    require_tools("chromium")
    page = tmp_path / "report.html"
    page.write_text('<!DOCTYPE html><html><head><title>x</title></head><body><img src="gone.png">'
                    '<script>console.error("boom")</script></body></html>')
    with Browser() as browser:
        got = browser.open(page.as_uri(), CHECK)
    assert got.value["images"] == 1 and got.value["loaded"] == 0 and got.value["headline"] is None
    assert ("error", "boom") in got.errors and got.failed


def test_plots_label_luns_as_ch_lun_and_queue_depths_as_integers(report, tmp_path, monkeypatch):
    out, results = report
    seen = {}

    def shown(ax, axis):                                     # the tick labels inside the axis' range
        lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
        ticks = ax.get_xticks() if axis == "x" else ax.get_yticks()
        labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
        return [lab.get_text() for v, lab in zip(ticks, labels) if lo <= v <= hi]

    def keep(fig, path):
        seen[Path(path).name] = [(shown(ax, "y"), shown(ax, "x")) for ax in fig.axes]
        figures.plt.close(fig)
    monkeypatch.setattr(figures, "save", keep)
    figures.draw(results, tmp_path)
    ylab, xlab = seen["heatmap_erase.png"][0]
    assert ylab == ["0/0", "0/1", "1/0", "1/1"]                         # channel/lun, one per LUN
    assert xlab == [str(b) for b in range(16)]                       # blocks: every one, as integers
    assert seen["qd_throughput.png"][0][1] == ["1", "4"]
    assert all(re.fullmatch(r"\d+", t) for t in seen["convergence-randwrite.png"][0][1] if t)
