"""`--ftl FILE.py:Class` / `package.module:Class`: the class a user names, or one line why not."""
import pytest

from oxftl import Ftl, FtlLoadError, load_ftl
from oxftl.template import PageFtl


def test_load_ftl_by_module_and_by_file(tmp_path):
    assert load_ftl("oxftl.template:PageFtl") is PageFtl
    f = tmp_path / "mine.py"
    f.write_text("from oxftl.template import PageFtl\nclass Mine(PageFtl):\n    name = 'mine'\n")
    cls = load_ftl(f"{f}:Mine")
    assert issubclass(cls, PageFtl) and cls.ftl_name() == "mine"


@pytest.mark.parametrize("spec, says", [
    ("nocolon", "expected FILE.py:Class"),
    ("x.py:1bad", "is not a class name"),
    ("missing.py:X", "missing.py: no such file"),
    ("oxftl.template:Nope", "has no Nope"),
    ("oxftl.nosuchmodule:X", "cannot import"),
    ("oxftl.template:OOB", "is not a subclass of oxftl.Ftl"),
])
def test_load_ftl_refuses_with_one_line(spec, says):
    with pytest.raises(FtlLoadError, match=says) as e:
        load_ftl(spec)
    assert "\n" not in str(e.value)


def test_load_ftl_names_missing_methods_and_a_broken_module(tmp_path):
    f = tmp_path / "half.py"
    f.write_text("from oxftl import Ftl\nclass Half(Ftl):\n    def open(self): pass\n")
    with pytest.raises(FtlLoadError, match="does not implement flush, read, trim, write"):
        load_ftl(f"{f}:Half")
    g = tmp_path / "broken.py"
    g.write_text("import nosuchthing\n")
    with pytest.raises(FtlLoadError, match="importing .*broken.py failed: ModuleNotFoundError"):
        load_ftl(f"{g}:X")


def test_ftl_name_defaults_to_the_class_name_and_must_fit_the_label(tmp_path):
    class Plain(PageFtl):
        name = None
    assert Plain.ftl_name() == "Plain"
    f = tmp_path / "long.py"
    f.write_text("from oxftl.template import PageFtl\nclass Long(PageFtl):\n    name = 'x' * 33\n")
    with pytest.raises(FtlLoadError, match="1-32 ASCII characters"):
        load_ftl(f"{f}:Long")
    assert issubclass(PageFtl, Ftl)
