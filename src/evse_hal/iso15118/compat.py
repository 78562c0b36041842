"""Run ``iso15118`` 0.31.2 (written for pydantic v1) beside our pydantic v2 code.

``iso15118`` 0.31.2 says ``from pydantic import ...`` and pins ``pydantic==1.10.21``; we install it
with ``--no-deps`` next to pydantic v2, which still ships the v1 API as ``pydantic.v1``. ``install()``
puts an import hook on ``sys.meta_path`` that loads every module under ``iso15118.`` from its source
with its pydantic imports pointed at ``pydantic.v1``:

    from pydantic import Field            ->  from pydantic.v1 import Field
    from pydantic.error_wrappers import E ->  from pydantic.v1.error_wrappers import E
    import pydantic                       ->  import pydantic.v1 as pydantic

The rewrite works on the syntax tree (``ast``), not on text, so strings, comments and multi-line
imports are handled, and an import that already names ``pydantic.v1`` is left alone. Rewritten
modules are compiled from source each time: the bytecode cache beside the package holds the
*unrewritten* code and must not be used for them (nor written with our version).

Nothing happens when this module is imported; ``install()`` is explicit and idempotent. Call it
before the first ``import iso15118...`` of the process (``evse_secc`` does so when it is imported).

REMOVAL CONDITION: delete this module (and its ``install()`` calls) once an ``iso15118`` release
newer than 0.31.2 imports ``pydantic.v1`` itself (upstream ecog-io/iso15118 PR #455, merged but not
released as of 0.31.2). Then install that release normally.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

#: The package whose modules get rewritten (the package itself and everything below it).
REWRITTEN_PACKAGE = "iso15118"

_PYDANTIC = "pydantic"
_PYDANTIC_V1 = "pydantic.v1"


def _is_rewritten_module(fullname: str) -> bool:
    return fullname == REWRITTEN_PACKAGE or fullname.startswith(REWRITTEN_PACKAGE + ".")


def _v1_module_name(module: str) -> str | None:
    """``pydantic[.x]`` -> ``pydantic.v1[.x]``; None when the name is not pydantic v2's or is v1 already."""
    if module == _PYDANTIC_V1 or module.startswith(_PYDANTIC_V1 + "."):
        return None
    if module == _PYDANTIC:
        return _PYDANTIC_V1
    if module.startswith(_PYDANTIC + "."):
        return _PYDANTIC_V1 + module[len(_PYDANTIC):]
    return None


class UnsupportedPydanticImport(ImportError):
    """An import form the rewrite cannot express (``import pydantic.x`` without ``as``)."""


class _PydanticV1ImportRewriter(ast.NodeTransformer):
    def __init__(self, filename: str) -> None:
        self._filename = filename

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.ImportFrom:
        if node.level == 0 and node.module is not None:
            v1_name = _v1_module_name(node.module)
            if v1_name is not None:
                node.module = v1_name
        return node

    def visit_Import(self, node: ast.Import) -> ast.Import:
        for alias in node.names:
            v1_name = _v1_module_name(alias.name)
            if v1_name is None:
                continue
            if alias.asname is None and alias.name != _PYDANTIC:
                # `import pydantic.fields` binds the name `pydantic` (v2) and reaches `.fields` through
                # it; there is no equivalent binding to v1. Not used by iso15118 0.31.2.
                raise UnsupportedPydanticImport(
                    f"{self._filename}:{node.lineno}: 'import {alias.name}' cannot be pointed at "
                    f"{_PYDANTIC_V1}; see evse_hal.iso15118.compat")
            alias.asname = alias.asname or _PYDANTIC
            alias.name = v1_name
        return node


def rewrite_pydantic_imports(source: str | bytes, filename: str = "<string>") -> ast.Module:
    """The syntax tree of ``source`` with its pydantic (v2) imports pointed at ``pydantic.v1``."""
    tree = ast.parse(source, filename)
    tree = _PydanticV1ImportRewriter(filename).visit(tree)
    return ast.fix_missing_locations(tree)


class _PydanticV1SourceLoader(importlib.machinery.SourceFileLoader):
    """Loads a module from its .py source with the import rewrite; never reads or writes bytecode."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path)
        tree = rewrite_pydantic_imports(source, self.path)
        return compile(tree, self.path, "exec", dont_inherit=True)


class Iso15118PydanticV1Finder(importlib.abc.MetaPathFinder):
    """Finds ``iso15118.*`` modules like the normal path finder, then swaps in the rewriting loader."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not _is_rewritten_module(fullname):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        assert spec.origin is not None  # a SourceFileLoader's module has a file
        spec.loader = _PydanticV1SourceLoader(fullname, spec.origin)
        spec.cached = None  # the cached bytecode is the unrewritten module's
        return spec


def is_installed() -> bool:
    """True when the hook is on ``sys.meta_path``."""
    return any(isinstance(finder, Iso15118PydanticV1Finder) for finder in sys.meta_path)


def install() -> None:
    """Put the hook first on ``sys.meta_path`` (once; later calls do nothing).

    Raises RuntimeError when an ``iso15118`` module that uses pydantic was imported before the hook,
    since that module would hold pydantic v2 objects the rest of the package cannot mix with.
    """
    if is_installed():
        return
    early = sorted(name for name, module in sys.modules.items()
                   if _is_rewritten_module(name) and _imports_pydantic_v2(module))
    if early:
        raise RuntimeError(
            "iso15118 modules were imported before evse_hal.iso15118.compat.install(): "
            + ", ".join(early))
    sys.meta_path.insert(0, Iso15118PydanticV1Finder())


def _imports_pydantic_v2(module: ModuleType) -> bool:
    """True when ``module`` holds objects of pydantic v2 (loaded without the hook)."""
    for value in vars(module).values():
        origin = value.__name__ if isinstance(value, ModuleType) else getattr(value, "__module__", None)
        if isinstance(origin, str) and _v1_module_name(origin) is not None:
            return True
    return False
