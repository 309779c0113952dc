"""`pip install espi` is the library and the command alone: a wheel and an sdist built from this
tree, the wheel installed into a fresh virtualenv, imported and run there."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = {"lxml", "xmlschema", "python-dateutil", "click", "requests"}
APPS = {"flask", "authlib", "sqlalchemy", "alembic", "huey", "flask-login", "flask-wtf"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return wheel, sdist


def test_the_wheel_holds_the_library_typed_with_its_schemas_and_no_fakes(built):
    wheel, sdist = built
    names = zipfile.ZipFile(wheel).namelist()
    assert "espi/py.typed" in names and "espi/xsd/espi-4.0/espi.xsd" in names
    assert not any(n.startswith("fakes/") for n in names)
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    required = {line.split(":", 1)[1].split(";")[0].split(">")[0].split("[")[0].strip().lower()
                for line in text.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line}  # fmt: skip
    assert required == LIBRARY
    app_extra = {line.split(":", 1)[1].split(">")[0].split("[")[0].strip().lower()
                 for line in text.splitlines() if line.startswith("Requires-Dist:") and "extra == 'app'" in line}  # fmt: skip
    assert app_extra >= APPS
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert any(m.endswith("/xsd/espi-4.0/espi.xsd") for m in members)


def test_the_wheel_installs_into_a_fresh_venv_and_works(built, tmp_path):
    wheel, _ = built
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    if install.returncode != 0 and "No matching distribution" in install.stderr + install.stdout:
        pytest.skip(f"the package registry cannot be reached: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr[-2000:]
    sample = ROOT / "samples" / "sce_bulk_15min.xml"
    script = (
        "import importlib.util, espi, espi.providers, espi.client\n"
        f"feed = espi.parse({str(sample)!r}, espi.ParseOptions(warn=False))\n"
        f"assert espi.validate({str(sample)!r}) is not None\n"
        "print(len(list(feed.readings())))\n"
        "print(','.join(sorted(m for m in ('flask', 'sqlalchemy', 'authlib', 'huey') "
        "if importlib.util.find_spec(m))))\n"
    )
    ran = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=False,
                         cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-2000:]
    readings, apps = ran.stdout.split("\n")[:2]
    assert readings == "97" and apps == ""  # the library alone: no web framework came with it
    cli = subprocess.run([str(env / "bin" / "espi"), "summary", str(sample)], capture_output=True,
                         text=True, check=False)  # fmt: skip
    assert cli.returncode == 0 and "readings: 97" in cli.stdout, cli.stderr
