"""How the fakes are built: each a blueprint of module-level routes with its state on the app,
defining for itself whatever it checks (it imports nothing of the adapters it stands in for:
a wrong choice in an adapter cannot pass on both sides), and none of them in the wheel."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from fakes import griddy, pelm, wattshift, wattzon

ROOT = Path(__file__).resolve().parents[2]
FAKES = (pelm, wattshift, wattzon, griddy)


@pytest.mark.parametrize("module", FAKES, ids=lambda m: m.__name__)
def test_a_fake_imports_nothing_of_espi(module: object) -> None:
    source = Path(str(getattr(module, "__file__", ""))).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(str(node.module))
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not {name for name in imported if name.split(".")[0] == "espi"}


@pytest.mark.parametrize("module", FAKES, ids=lambda m: m.__name__)
def test_a_fake_is_a_blueprint_of_module_level_routes(module: object) -> None:
    app = module.create_app()  # type: ignore[attr-defined]
    name = module.__name__.rsplit(".", 1)[-1]  # type: ignore[attr-defined]
    assert name in app.blueprints and name in app.extensions
    routes = {k: v for k, v in app.view_functions.items() if k != "static"}
    assert routes and all(k.startswith(f"{name}.") for k in routes)
    assert all("<locals>" not in f.__qualname__ for f in routes.values())
    assert module.state(app) is app.extensions[name]  # type: ignore[attr-defined]


def test_the_fakes_are_not_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert "fakes" not in packages and "espi" in packages
