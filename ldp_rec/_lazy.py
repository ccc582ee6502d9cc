"""Package ``__init__`` helper: public names that load their module on first use (PEP 562), so a package can
show its whole public API without importing every module (and without import cycles)."""

from __future__ import annotations

import importlib


def lazy_api(package: str, public: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package`` whose public name ``k`` lives in module ``public[k]``
    (relative to the package)."""

    def __getattr__(name: str):
        if name in public:
            return getattr(importlib.import_module(public[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(vars(importlib.import_module(package))) | set(public))

    return __getattr__, __dir__
