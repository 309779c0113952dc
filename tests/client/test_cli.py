"""`espi fetch custodian PROFILE URI` against the live custodian: the local profile moved to its
port with --base-url, credentials from the environment, exit 3 with the reason on refusal."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner

import espi
from espi import client as espi_client
from espi.cli import main
from tests.custodian.conftest import Custodian

from .conftest import connect


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, bytes, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes, result.stderr


def client_env(custodian: Custodian) -> dict[str, str]:
    return {"ESPI_CLIENT_ID": custodian.creds["client_id"],
            "ESPI_CLIENT_SECRET": custodian.creds["client_secret"]}  # fmt: skip


def test_help_names_the_environment() -> None:
    code, out, _ = run("fetch", "custodian", "--help")
    assert code == 0
    for name in ("ESPI_CLIENT_ID", "ESPI_CLIENT_SECRET", "ESPI_ACCESS_TOKEN", "--base-url"):
        assert name in out.decode()


def test_a_usage_point_with_a_customer_token(
    custodian: Custodian, client: espi_client.Custodian, tmp_path: Path
) -> None:
    credentials = connect(client)
    sid = credentials.account.rsplit("/", 1)[1]
    out = tmp_path / "up.xml"
    env = {"ESPI_ACCESS_TOKEN": credentials.access_token or ""}
    code, _, err = run("fetch", "custodian", "local", f"Subscription/{sid}/UsagePoint",
                       "--base-url", custodian.base, "-o", str(out), env=env)  # fmt: skip
    assert code == 0, err
    up = (
        espi.parse(out, espi.ParseOptions(warn=False))
        .usage_points[0]
        .link("self")
        .rsplit("/", 1)[1]
    )
    since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 86400))
    code, _, err = run("fetch", "custodian", "local", f"{custodian.resource}/Batch/Subscription/{sid}/UsagePoint/{up}",
                       "--base-url", custodian.base, "--since", since, "-o", str(out), env=env)  # fmt: skip
    assert code == 0, err
    assert f"{out}: " in err and f"/Batch/Subscription/{sid}/UsagePoint/{up}" in err
    assert espi.validate(out) == [] and not Path(f"{out}.partial").exists()
    readings = list(espi.iter_readings(out))
    assert readings and min(r.start for r in readings) >= time.time() - 7 * 86400


def test_client_resources_to_stdout(custodian: Custodian) -> None:
    code, out, err = run("fetch", "custodian", "local", "ReadServiceStatus", "--base-url",
                         custodian.base, env=client_env(custodian))  # fmt: skip
    assert code == 0, err
    assert espi.parse(out).service_status is not None
    assert "stdout: " in err


def test_bulk_answers_202_exit_3(custodian: Custodian, tmp_path: Path) -> None:
    code, _, err = run("fetch", "custodian", "local", f"Batch/Bulk/{custodian.creds['bulk_id']}",
                       "--base-url", custodian.base, "-o", str(tmp_path / "bulk.xml"),
                       env=client_env(custodian))  # fmt: skip
    assert code == 3
    assert "accepted the request for" in err and "(202): the data will come by notification" in err
    assert not list(tmp_path.iterdir())


def test_a_uri_outside_the_resource_base_is_refused_exit_3(custodian: Custodian) -> None:
    for uri in (f"{custodian.resource}/../../../../?/Batch/Bulk/x", "%2e%2e/%2e%2e/Batch/Bulk/x",
                "https://evil.example/GreenButtonConnect/espi/1_1/resource/Batch/Bulk/x"):  # fmt: skip
        code, _, err = run("fetch", "custodian", "local", uri, "--base-url", custodian.base,
                           env=client_env(custodian))  # fmt: skip
        assert code == 3, err
        assert (
            "error: custodian: refused" in err
            and f"outside the resource base {custodian.resource}" in err
        )


def test_the_custodian_refusing_is_exit_3(custodian: Custodian) -> None:
    env = {"ESPI_CLIENT_ID": custodian.creds["client_id"], "ESPI_CLIENT_SECRET": "wrong"}
    code, _, err = run(
        "fetch", "custodian", "local", "ReadServiceStatus", "--base-url", custodian.base, env=env
    )
    assert code == 3 and "error: custodian HTTP 401 invalid_client" in err


def test_missing_credentials_are_named() -> None:
    code, _, err = run(
        "fetch", "custodian", "local", "Batch/Subscription/1", env={"ESPI_ACCESS_TOKEN": ""}
    )
    assert code == 2 and "is read with the customer token: set ESPI_ACCESS_TOKEN" in err
    code, _, err = run("fetch", "custodian", "local", "Batch/Bulk/1", env={"ESPI_CLIENT_ID": ""})
    assert code == 2 and "set ESPI_CLIENT_ID and ESPI_CLIENT_SECRET" in err
    code, _, err = run("fetch", "custodian", "nowhere", "x")
    assert code == 2 and "custodian nowhere: set token_url, resource_base" in err
