"""Import a second copy of the ``optbench`` package (an older checkout) under another name, for side-by-side runs.

    git archive <commit> optbench | tar -x -C /tmp/before        # /tmp/before/optbench/...
    old_zoo = import_tree("/tmp/before", "optim")                # module ``optbench_before.optim``
    old_zoo.get("muon")                                          # the old Muon, its own registry

Every ``import optbench...`` / ``from optbench... import`` in the copy's source is rewritten to the alias while it
is loaded, so the copy never touches the installed package (nor registers its optimizers twice).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import re
import sys
from pathlib import Path

ALIAS = "optbench_before"
_IMPORT = re.compile(r"^(\s*)(from|import)(\s+)optbench(?=[\s.])", re.MULTILINE)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, root: Path, alias: str):
        self.root, self.alias = root, alias

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.alias and not fullname.startswith(self.alias + "."):
            return None
        rel = Path(*(["optbench"] + fullname.split(".")[1:]))
        pkg = self.root / rel / "__init__.py"
        mod = (self.root / rel).with_suffix(".py")
        if pkg.is_file():
            return importlib.util.spec_from_file_location(
                fullname, pkg, loader=_Loader(fullname, str(pkg), self.alias), submodule_search_locations=[str(pkg.parent)]
            )
        if mod.is_file():
            return importlib.util.spec_from_file_location(fullname, mod, loader=_Loader(fullname, str(mod), self.alias))
        return None


class _Loader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, alias: str):
        super().__init__(fullname, path)
        self.alias = alias

    def get_data(self, path):
        data = super().get_data(path)
        if not str(path).endswith(".py"):
            return data
        return _IMPORT.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{self.alias}", data.decode()).encode()

    def path_stats(self, path):  # no bytecode cache: the rewritten source must be compiled
        raise OSError


def import_tree(root: str | Path, submodule: str = "", alias: str = ALIAS):
    """``optbench.<submodule>`` of the package under ``root`` (``root/optbench/__init__.py``), imported as
    ``<alias>.<submodule>`` (the package itself when submodule is empty)."""
    root = Path(root).resolve()
    if not (root / "optbench" / "__init__.py").is_file():
        raise FileNotFoundError(f"{root}: no optbench/__init__.py below it (expected a checkout's package folder)")
    if alias not in sys.modules:
        sys.meta_path.insert(0, _Finder(root, alias))
    return importlib.import_module(f"{alias}.{submodule}" if submodule else alias)
