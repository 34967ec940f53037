"""`--ftl FILE.py:Class` or `--ftl package.module:Class`: the FTL class a user names."""
import importlib
import importlib.util
import os
import sys

from .ftl import Ftl


class FtlLoadError(Exception):
    """The named FTL cannot be loaded; str() is one line naming the problem."""


def load_ftl(spec: str) -> type[Ftl]:
    """The Ftl subclass `spec` names: 'path/to/file.py:Class' or 'package.module:Class'."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise FtlLoadError(f"FTL {spec}: expected FILE.py:Class or package.module:Class")
    where, cls_name = spec.rsplit(":", 1)
    if not cls_name.isidentifier():
        raise FtlLoadError(f"FTL {spec}: {cls_name!r} is not a class name")
    if where.endswith(".py") or os.sep in where:
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise FtlLoadError(f"FTL {spec}: {where}: no such file")
        mod_name = f"oxftl_user_{abs(hash(path)):x}"
        module = sys.modules.get(mod_name)
        if module is None:
            s = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(s)
            sys.modules[mod_name] = module
            try:
                s.loader.exec_module(module)
            except Exception as e:          # noqa: BLE001 - the user's module: say what broke
                del sys.modules[mod_name]
                raise FtlLoadError(f"FTL {spec}: importing {where} failed: "
                                   f"{type(e).__name__}: {e}") from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as e:
            raise FtlLoadError(f"FTL {spec}: cannot import {where}: {e}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        raise FtlLoadError(f"FTL {spec}: {where} has no {cls_name}")
    if not (isinstance(cls, type) and issubclass(cls, Ftl)):
        raise FtlLoadError(f"FTL {spec}: {cls_name} is not a subclass of oxftl.Ftl")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise FtlLoadError(f"FTL {spec}: {cls_name} does not implement {', '.join(missing)}")
    name = cls.ftl_name()
    if not name.isascii() or not 0 < len(name.encode()) <= 32:
        raise FtlLoadError(f"FTL {spec}: the FTL's name {name!r} must be 1-32 ASCII characters")
    if not isinstance(cls.version, int) or not 0 <= cls.version < 2**32:
        raise FtlLoadError(f"FTL {spec}: version must be an integer in 0..2**32-1")
    return cls
