"""The exhaustive campaign: a deterministic workload on an aged snapshot whose operations
are labelled by what the FTL was doing, and cuts that land exactly on them -- also inside
the clean stop and the recovery of a remount."""
import pytest

from oxhost.torture.oracle import Violation

from oxhost.torture import Config, Exhaustive


@pytest.mark.parametrize("mode", ["pblk", "appnvm"])
def test_exhaustive_labels_every_operation_and_cuts_inside_a_remount(mode, tmp_path):
    ex = Exhaustive(mode, Config(modes=(mode,), seed=2), 1200, str(tmp_path))
    ex._age()
    ex._reference()
    labels = ex.ref.labels
    assert len(labels) == 1200 and ex.report.remounts >= 1 and ex.report.problems == []
    assert not [x for x in labels if "other" in x or "unknown" in x]
    kinds = {x.split(":")[0] for x in labels}
    assert kinds == {"erase", "program", "read"}
    assert any("GC" in x for x in labels) and any("(recovery)" in x for x in labels)
    assert any("(shutdown)" in x for x in labels)
    # the cuts around the first remount: its shutdown's last operations, its recovery's first
    j = next(i for i, x in enumerate(labels) if "(recovery)" in x)
    for k in range(j - 1, j + 3):                      # operation k is labels[k - 1]
        ex.round(k)
    rep = ex.report
    assert rep.violations == [] and rep.problems == [] and rep.sectors_verified == 4 * ex.oracle.n


def test_exhaustive_names_the_cut_operation_in_a_violation_and_its_replay(tmp_path):
    ex = Exhaustive("appnvm", Config(modes=("appnvm",), seed=2), 10, str(tmp_path))
    ex._age()
    ex._reference()
    ex._violate(7, Violation(3, "older", "generation >= 5", "generation 4"), "after recovery")
    v = ex.report.violations[0]
    assert v["op"] == 7 and v["op_kind"] == ex.ref.labels[6]
    assert "--exhaustive 7 --from-op 7" in v["replay"]
