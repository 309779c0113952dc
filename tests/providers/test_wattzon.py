"""WattzOn Link's adapter against the local WattzOn over mutual TLS (a test CA made here): the
contract, then the seed's own behaviour: certificates, look-ups, the connect form, profiles and
tags, write-only sensitive fields, jobs and their statuses, bills, interval months (normalized
and the utility's source file), SQS notifications."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask, request

import espi
from espi import timeparams
from espi.codes import FlowDirectionKind, ItemKind, ServiceKind, UnitSymbolKind
from espi.errors import AuthError, NotReady, ProviderError, Unavailable
from espi.providers import ConnectKind, Credentials, DataKind
from espi.providers import wattzon as W
from fakes import wattzon as fake_wz
from fakes.common import Served, serve
from tests.certs import make_certs, serve_tls

from .contract import ProviderContract, fetched


def client_for(url: str, certs: Path, stem: str | None = "client", **kw: Any) -> W.WattzOn:
    cert = (str(certs / f"{stem}.pem"), str(certs / f"{stem}.key")) if stem else None
    return W.WattzOn(cert, base_url=url, verify=str(certs / "ca.pem"), **kw)


def new_profile(wz: W.WattzOn, username: str = "customer", provider: int = 3149) -> int:
    pid = wz.create_profile(provider, zipcode="00007", label=f"tp-{username}")
    wz.set_credentials(pid, username, "secret-password")
    return pid


def extract(wz: W.WattzOn, pid: int, *modes: str) -> None:
    for mode in modes or ("bill", "interval"):
        wz.wait(wz.start_job(pid, mode=mode, notify=False), poll=0)


def of(pid: int) -> Credentials:
    return Credentials(account=str(pid))


GOOD_FORM = {"zip": "00007", "utility": "3149", "username": "customer", "password": "pw"}


class TestWattzOn(ProviderContract):
    slug = "wattzon"
    connect_kind = ConnectKind.CREDENTIALS
    data = frozenset({DataKind.INTERVALS, DataKind.BILLS})
    notifies = True
    auth_status = 403  # WattzOn: "403 (Forbidden): Permission denied"
    rate_limit_body: ClassVar[Any] = {"error": "Too many requests"}
    server_error_body: ClassVar[Any] = {"error": "Internal server error"}
    certs_path: ClassVar[Path]

    @pytest.fixture(autouse=True)
    def _certs(self, certs: Path) -> None:
        type(self).certs_path = certs

    @pytest.fixture
    def fake(self, certs: Path) -> Iterator[Served]:
        served = serve_tls(self.make_fake(), certs)
        yield served
        served.stop()

    def make_fake(self) -> Any:
        return fake_wz.create_app({"third party": True, "former customer": False})

    def settings(self, url: str) -> dict[str, str]:
        certs = self.certs_path
        return {"client_cert": str(certs / "client.pem"), "client_key": str(certs / "client.key"),
                "ca_bundle": str(certs / "ca.pem"), "base_url": url}  # fmt: skip

    def bad_client(self, url: str) -> W.WattzOn:
        return client_for(url, self.certs_path, "revoked")  # signed by the CA, but disabled

    def good_form(self) -> dict[str, str]:
        return dict(GOOD_FORM)

    def bad_forms(self) -> list[tuple[dict[str, str], str]]:
        return [
            ({**GOOD_FORM, "zip": "99999"}, "zip"),
            ({**GOOD_FORM, "zip": ""}, "zip"),
            ({**GOOD_FORM, "utility": "741"}, "utility"),  # PG&E does not serve 00007
            ({**GOOD_FORM, "username": ""}, "username"),
            ({**GOOD_FORM, "password": ""}, "password"),
        ]

    def connected(self, client: Any, fake: Served) -> Credentials:
        return client.connect(self.good_form())

    def notification(self, credentials: Credentials) -> bytes:
        body = {"app": "link", "profile_id": int(credentials.account), "job_id": "j",
                "final_state": "success", "mode": "bill"}  # fmt: skip
        return json.dumps(body).encode()

    def cheap_call(self, client: Any, fake: Served | None) -> Any:
        return client.echo("ping")

    @pytest.fixture
    def wz(self, fake: Served) -> W.WattzOn:
        return self.client(fake.url)

    # ------------------------------------------------------------------ mutual TLS

    def test_echo_and_certificate_info(self, wz: W.WattzOn) -> None:
        assert wz.echo("Hello") == "Hello"
        info = wz.certificate_info()
        assert info["client_name"] == "third party" and info["enabled"] is True
        assert info["created_date"] < info["expiration_date"]

    def test_paths_carry_the_trailing_slash(self, wz: W.WattzOn) -> None:
        assert wz.url("echo") == f"{wz.base_url}/link/4.0/echo/"
        assert (
            wz.url("/link/4.0/data/bills/1/b/pdf") == f"{wz.base_url}/link/4.0/data/bills/1/b/pdf/"
        )

    def test_no_certificate_is_permission_denied(self, fake: Served, certs: Path) -> None:
        with pytest.raises(AuthError) as caught:
            client_for(fake.url, certs, None).echo("x")
        assert caught.value.status == 403 and caught.value.message == "Permission denied"

    def test_certificate_from_another_ca_fails_the_handshake_and_is_not_retried(
        self, fake: Served, tmp_path: Path
    ) -> None:
        other = make_certs(tmp_path / "other", {"client": "third party"})
        waits: list[float] = []
        wz = W.WattzOn((str(other / "client.pem"), str(other / "client.key")), base_url=fake.url,
                       verify=str(self.certs_path / "ca.pem"), sleep=waits.append)  # fmt: skip
        with pytest.raises(AuthError, match=r"TLS with https://127\.0\.0\.1"):
            wz.echo("x")
        assert waits == []

    # ------------------------------------------------------------------ look-ups

    def test_zip_and_utility_look_up(self, wz: W.WattzOn) -> None:
        assert wz.zip_info("00007")["state"] == "RI"
        assert wz.find_utilities(zipcode="00007", type="water") == [3151]
        assert wz.find_utilities(name="pacific gas") == [741]
        pge = wz.utility(741)
        assert pge["lseid"] == "14328" and pge["type"] == "electricity,gas"
        with pytest.raises(ProviderError) as caught:
            wz.zip_info("99999")
        assert (caught.value.status, caught.value.code) == (404, "zip_not_found")
        with pytest.raises(ProviderError, match="Utility Provider not found"):
            wz.find_utilities(zipcode="94105", type="water")
        with pytest.raises(ValueError, match="ZIP code or a name"):
            wz.find_utilities()

    # ------------------------------------------------------------------ profiles and tags

    def test_profiles_create_read_change_list_delete(self, wz: W.WattzOn) -> None:
        a = wz.create_profile(3149, zipcode="00007", label="case-1")
        b = wz.create_profile(741, zipcode="94105", label="case-2")
        wz.add_tag(a, "solar")
        assert wz.profile(a)["utility_provider"].startswith("Mock Utility Provider")
        changed = wz.change_profile(a, label="case-1b")
        assert changed["label"] == "case-1b" and changed["modified"] >= changed["created"]
        assert wz.profiles() == [a, b]
        assert wz.profiles(label="case-2") == [b]
        assert wz.profiles(provider=741) == [b]
        assert wz.profiles(tags=["solar", "budget billing"]) == [a]
        assert wz.profiles(ids=[b, 9999]) == [b]
        assert wz.profiles(start_date="2000-01-01", end_date="2999-01-01") == [a, b]
        with pytest.raises(ProviderError) as caught:
            wz.create_profile(3149, zipcode="12345")
        assert caught.value.message == "ZIP not found"
        with pytest.raises(ProviderError, match="Utility provider not found"):
            wz.change_profile(a, provider_id=1)
        with pytest.raises(ValueError, match="no field"):
            wz.change_profile(a, colour="red")
        wz.delete_profile(b)
        with pytest.raises(ProviderError) as caught:
            wz.profile(b)
        assert (caught.value.status, caught.value.code) == (404, "profile_not_found")

    def test_tags(self, wz: W.WattzOn) -> None:
        a, b = wz.create_profile(3150), wz.create_profile(3150)
        assert wz.add_tag(a, "budget billing") is True  # 201: a new tag
        assert wz.add_tag(b, "budget billing") is False  # 200: existing tag attached
        assert wz.tags(a) == ["budget billing"]
        wz.delete_tag(a, "budget billing")
        assert wz.tags(a) == [] and wz.tags(b) == ["budget billing"]
        with pytest.raises(ProviderError, match="Tag not found"):
            wz.delete_tag(a, "budget billing")

    # ------------------------------------------------------------------ sensitive fields

    def test_sensitive_fields_are_encrypted_and_write_only(
        self, wz: W.WattzOn, fake: Served
    ) -> None:
        pid = wz.create_profile(3149, zipcode="00007")
        wz.set_credentials(pid, "customer", "pa55word")
        stored = fake_wz.state(fake.app).profiles[pid]["sensitive"]
        assert stored == {"username": "customer", "password": "pa55word"}  # decrypted at WattzOn
        assert wz.sensitive_fields(pid) == ["password", "username"]  # names only, never values
        answer = wz.request("GET", f"profiles/{pid}/sensitive").text
        assert "pa55word" not in answer
        with pytest.raises(ProviderError) as caught:
            wz.set_sensitive(pid, "password", "again")
        assert (caught.value.status, caught.value.code) == (409, "field_already_exists")
        wz.set_sensitive(pid, "password", "new-one", replace=True)
        assert stored["password"] == "new-one"
        wz.delete_sensitive(pid, "password")
        assert wz.sensitive_fields(pid) == ["username"]
        with pytest.raises(ProviderError, match="Sensitive field not found"):
            wz.set_sensitive(pid, "password", "x", replace=True)

    def test_an_expired_transmission_key_is_replaced_and_the_value_sent_again(
        self, wz: W.WattzOn, fake: Served
    ) -> None:
        pid = wz.create_profile(3149)
        first = wz.transmission_key()
        fake_wz.state(fake.app).expire_keys()  # expired between fetching and sending
        wz.set_sensitive(pid, "username", "customer")
        assert wz.transmission_key().public_key != first.public_key
        assert fake_wz.state(fake.app).profiles[pid]["sensitive"]["username"] == "customer"

    def test_values_not_encrypted_under_a_transmission_key_are_refused(self, wz: W.WattzOn) -> None:
        pid = wz.create_profile(3149)
        for value in ("plain text", "aGVsbG8="):
            with pytest.raises(ProviderError) as caught:
                wz.request(
                    "POST", f"profiles/{pid}/sensitive", json={"field": "username", "value": value}
                )
            assert (caught.value.status, caught.value.code) == (403, "decryption_failed")
            assert not isinstance(caught.value, AuthError)  # the value's fault, not the client's

    # ------------------------------------------------------------------ jobs

    def test_a_job_walks_the_seeds_statuses_to_success(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz)
        seen: list[str] = []
        job = wz.start_job(pid, mode="interval", notify=False)
        done = wz.wait(job, poll=0, progress=lambda s: seen.append(s.state))
        assert seen == [*fake_wz.INTERVAL_STEPS, "success"]
        assert all(s in W.IN_PROGRESS for s in seen[:-1])
        assert done.ok and done.status == "AgentState.success" and done.error() is None
        assert wz.last_job(pid).job_id == job

    @pytest.mark.parametrize(
        ("username", "error", "code"),
        [
            ("credential_error", AuthError, "credential_error"),
            ("action_needed", ProviderError, "action_needed"),
            ("site_error", Unavailable, "site_error"),
            ("timeout_agent", Unavailable, "timeout_agent"),
            ("agent_failure", ProviderError, "agent_failure"),
            ("mystery", ProviderError, "mystery_state"),  # not in the seed: ``finished`` decides
        ],
    )
    def test_failed_jobs_raise_what_their_status_means(
        self, wz: W.WattzOn, username: str, error: type[ProviderError], code: str
    ) -> None:
        pid = new_profile(wz, username)
        with pytest.raises(error) as caught:
            wz.wait(wz.start_job(pid), poll=0)
        assert type(caught.value) is error and caught.value.code == code

    def test_a_profile_without_credentials_ends_incomplete_parameters(self, wz: W.WattzOn) -> None:
        pid = wz.create_profile(3149)
        with pytest.raises(AuthError, match="lacks the credentials"):
            wz.wait(wz.start_job(pid), poll=0)

    def test_job_refusals(self, wz: W.WattzOn) -> None:
        with pytest.raises(ProviderError, match="No agent for provider"):
            wz.start_job(new_profile(wz, provider=3152))
        with pytest.raises(ProviderError, match="Job not found"):
            wz.job("no-such-job")
        with pytest.raises(ValueError, match="bill or interval"):
            wz.start_job(1, mode="everything")

    def test_waiting_too_long_is_not_ready(self, wz: W.WattzOn) -> None:
        job = wz.start_job(new_profile(wz))
        with pytest.raises(NotReady, match="still"):
            wz.wait(job, poll=0, timeout=0)

    @pytest.mark.parametrize("status", [*W.TERMINAL, *W.IN_PROGRESS, "brand_new_status"])
    def test_every_status_is_understood(self, status: str) -> None:
        finished = status in W.TERMINAL or status == "brand_new_status"
        job = W.JobStatus("j", f"AgentState.{status}", finished)
        if not finished:
            assert job.error() is None and not job.ok
        elif status in ("success", "partial_success"):
            assert job.ok and job.error() is None
        else:
            err = job.error()
            assert err is not None and err.code == status

    # ------------------------------------------------------------------ data

    def test_bills_become_usage_summaries(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz)
        extract(wz, pid, "bill")
        records = wz.bills(pid)
        feed = wz.fetch(of(pid), intervals=False)
        gas = next(r for r in records if r["type"] == "gas")
        (up,) = [u for u in feed.usage_points if u.kind is ServiceKind.GAS]
        summary = next(
            s for s in up.usage_summaries if s.billing_period.start == W.when(gas["start_date"])
        )
        assert summary.bill_last_period == int(Decimal(str(gas["cost"])) * 100000)
        usage = summary.overall_consumption_last_period
        assert usage.uom is UnitSymbolKind.THERM
        assert Decimal(usage.value).scaleb(int(usage.power_of_ten_multiplier)) == Decimal(
            str(gas["usage"])
        )
        assert summary.tariff_profile == "G-1"
        assert (
            summary.billing_period.start + summary.billing_period.duration
            == W.when(gas["end_date"]) + 1
        )
        assert len(feed.usage_summaries) == len([r for r in records if r["type"] != "billing"])
        electric = next(u for u in feed.usage_points if u.kind is ServiceKind.ELECTRICITY)
        items = electric.usage_summaries[0].cost_additional_detail_last_period
        kinds = {li.note: li.item_kind for li in items}
        assert kinds["Payment received"] is ItemKind.PAYMENT and "Due date" in kinds
        assert "Current charges (all services)" in kinds
        assert espi.validate(espi.dumps(feed)) == []
        assert wz.bill_pdf(pid, gas["bill_id"]).startswith(b"%PDF")
        assert wz.request("GET", gas["pdf"]).content.startswith(b"%PDF")  # the record's own URI
        assert len(wz.bills(pid, job_id=gas["cached_job_id"])) == len(records)

    def test_water_and_electricity_records(self) -> None:
        records = [
            {"type": "water", "meter_number": "W1", "start_date": "2016-10-01T00:00:00",
             "end_date": "2016-10-31T23:59:59", "cost": 41.07, "usage": 3667, "units": "gallons"},
            {"type": "electricity", "service_id": "S1", "date": "2016-10-31T00:00:00",
             "cost": "84.12", "usage": "512.7", "units": "KWh", "exported_energy": 96.5,
             "rate_plan": "E-TOU-C", "bill_date": "2016-11-02"},
            {"type": "billing", "bill_date": "2016-11-02", "current_charges": 125.19,
             "total_amount_due": 125.19, "payment_received": 100, "due_date": "2016-11-23"},
        ]  # fmt: skip
        feed = W.to_feed(records)
        water, power = feed.usage_points
        (ws,) = water.usage_summaries
        assert (
            water.kind is ServiceKind.WATER
            and ws.overall_consumption_last_period.uom is UnitSymbolKind.US_GAL
        )
        (es,) = power.usage_summaries  # the billing record joins the bill of its date
        usage = es.overall_consumption_last_period
        assert usage.value * 10 ** int(usage.power_of_ten_multiplier) == 512700
        exported, *billing = es.cost_additional_detail_last_period
        assert exported.measurement.value == 96500 and exported.amount == 0
        paid = next(li for li in billing if li.note == "Payment received")
        assert paid.amount == -10000000
        assert es.bill_last_period == 8412000  # the electricity bill's own cost stays
        alone = W.to_feed([records[2]])  # a billing record with no bill of its date
        (summary,) = alone.usage_summaries
        assert summary.bill_last_period == 12519000 and summary.commodity is None
        assert espi.validate(espi.dumps(feed)) == []

    def test_interval_months_json_and_csv_agree(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz, "solar-home")
        extract(wz, pid)
        periods = wz.interval_periods(pid)
        assert {p["meter_id"] for p in periods} == {f"E{pid:07d}"}
        assert all(p["first_interval"] <= p["last_interval"] for p in periods)
        as_json = wz.fetch(of(pid), bills=False)
        as_csv = wz.fetch(of(pid), bills=False, format="csv")
        rows = [(r.start, r.duration, r.value) for r in as_json.readings()]
        assert rows == [(r.start, r.duration, r.value) for r in as_csv.readings()]
        (up,) = as_json.usage_points
        flows = [mr.reading_type.flow_direction for mr in up.meter_readings]
        assert flows == [FlowDirectionKind.FORWARD, FlowDirectionKind.REVERSE]
        assert up.meter_readings[0].reading_type.interval_length == 900
        month = wz.interval_month(
            pid, periods[-1]["meter_id"], periods[-1]["month_id"], format="json"
        )
        first = next(r for r in month if r["direction"] == "delivered")
        value = next(r.value for r in as_json.readings() if r.start == first["start"])
        mult = int(up.meter_readings[0].reading_type.power_of_ten_multiplier)
        assert Decimal(value).scaleb(mult) == Decimal(first["usage"]) * 1000
        latest = wz.fetch(of(pid), periods[-1]["first_interval"], bills=False)
        assert 0 < len(list(latest.readings())) < len(rows)
        with pytest.raises(ProviderError, match="Interval not found"):
            wz.interval_month(pid, "nope", "2001-01")

    def test_no_data_yet_is_empty_not_an_error(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz)
        assert wz.bills(pid) == [] and wz.interval_periods(pid) == []
        assert wz.fetch(of(pid)).usage_points == []

    def test_interval_files_missing_a_field_are_named(self) -> None:
        with pytest.raises(ProviderError, match="M1 2026-01: interval 2 lacks"):
            W.interval_rows(
                json.dumps([{"start": 0, "end": 900, "usage": 1}, {"start": 900}]),
                "json",
                "M1 2026-01",
            )
        with pytest.raises(ProviderError, match="unreadable json"):
            W.interval_rows("{", "json", "M1 2026-01")

    # ------------------------------------------------------------------ connecting

    def test_the_connect_form_asks_the_zip_first(self, wz: W.WattzOn) -> None:
        (zipcode,) = wz.connect_form({})
        assert zipcode.name == "zip" and zipcode.value == ""
        _, utility, username, password = wz.connect_form({"zip": "00007", "username": "me"})
        assert ("3149", "Mock Utility Provider (electric+gas)") in utility.choices
        assert utility.kind == "choice" and username.value == "me"
        assert password.kind == "password" and password.value == ""

    def test_connect_then_fetch_once_the_jobs_have_ended(self, wz: W.WattzOn, fake: Served) -> None:
        credentials = wz.connect(GOOD_FORM)
        pid = int(credentials.account)
        stored = fake_wz.state(fake.app).profiles[pid]["sensitive"]
        assert stored == {"username": "customer", "password": "pw"}
        assert len(credentials.extra["jobs"].split()) == 2
        with pytest.raises(NotReady, match="extraction still running"):
            wz.fetch(credentials)
        feed = fetched(wz, credentials, None)
        assert "jobs" not in credentials.extra  # renewed in place: nothing left to wait for
        assert feed.usage_summaries and list(feed.readings())
        # WattzOn says no time zone: the profile's ZIP code is in Rhode Island
        zones = {timeparams.to_zone_name(up.local_time_parameters) for up in feed.usage_points}
        assert zones == {"America/New_York"}

    def test_a_refused_utility_login_fails_the_fetch_for_good(self, wz: W.WattzOn) -> None:
        credentials = wz.connect({**GOOD_FORM, "username": "credential_error"})
        with pytest.raises(AuthError, match="the utility refused the username or password"):
            fetched(wz, credentials, None)
        assert credentials.extra["jobs"]  # still there: the next fetch says the same

    def test_a_connect_that_cannot_start_leaves_no_profile(
        self, wz: W.WattzOn, fake: Served
    ) -> None:
        before = set(fake_wz.state(fake.app).profiles)
        with pytest.raises(ProviderError, match="No agent for provider") as caught:
            wz.connect({**GOOD_FORM, "utility": "3152"})
        assert "the profile and its credentials were deleted at WattzOn" in caught.value.message
        assert set(fake_wz.state(fake.app).profiles) == before

    def test_disconnect_deletes_the_profile(self, wz: W.WattzOn, fake: Served) -> None:
        credentials = wz.connect(GOOD_FORM)
        assert "deleted at WattzOn" in wz.disconnect(credentials)
        assert int(credentials.account) not in fake_wz.state(fake.app).profiles
        assert wz.disconnect(credentials) == "the profile was already gone at WattzOn"

    # ------------------------------------------------------------------ source interval files

    def test_interval_month_reads_the_seeds_default_source_format(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz)
        extract(wz, pid, "interval")
        period = wz.interval_periods(pid)[0]
        meter, month = period["meter_id"], period["month_id"]
        source = wz.interval_month(pid, meter, month)  # no format: the seed's default, source
        normalized = wz.interval_month(pid, meter, month, format="json")
        assert [(r["start"], r["duration"], Decimal(r["usage"])) for r in source] == [
            (r["start"], r["duration"], Decimal(r["usage"])) for r in normalized
        ]

    def test_without_normalized_files_fetch_reads_the_source(self, wz: W.WattzOn) -> None:
        pid = new_profile(wz, "source_only")
        extract(wz, pid, "interval")
        period = wz.interval_periods(pid)[0]
        with pytest.raises(ProviderError) as caught:
            wz.interval_month(pid, period["meter_id"], period["month_id"], format="json")
        assert caught.value.code == "normalized_data_not_available"
        feed = wz.fetch(of(pid), bills=False)
        assert len(list(feed.readings())) > 1000

    def test_the_fakes_padding_is_its_own(self, wz: W.WattzOn) -> None:
        """The fake decrypts with the seed's PKCS1/OAEP (SHA-1), not with whatever the
        adapter uses: a value padded otherwise is refused."""
        pid = wz.create_profile(3149)
        key = serialization.load_pem_public_key(wz.transmission_key().public_key.encode())
        sha256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                              label=None)  # fmt: skip
        value = base64.b64encode(key.encrypt(b"customer", sha256)).decode()  # type: ignore[union-attr]
        with pytest.raises(ProviderError) as caught:
            wz.request(
                "POST", f"profiles/{pid}/sensitive", json={"field": "username", "value": value}
            )
        assert caught.value.code == "decryption_failed"

    # ------------------------------------------------------------------ notifications

    def test_the_seeds_notification_starts_a_fetch(self) -> None:
        body = json.dumps({"app": "link", "profile_id": 121, "job_id": "62f1c29e-aca8-40b8-aa9f-eb436539e3fe",
                           "tags": ["example", "tags"], "created_at": "2017-01-16 04:47:17.155559+00:00",
                           "final_state": "success", "mode": "bill", "existing_records": 12, "new_records": 1})  # fmt: skip
        started: list[W.Notification] = []
        assert W.on_notification(body, lambda n: started.append(n) or "queued") == "queued"
        assert started[0].profile_id == 121 and started[0].tags == ("example", "tags")
        failed = json.loads(body) | {"final_state": "credential_error"}
        W.on_notification(failed, started.append)
        assert [n.ok for n in started] == [True, False]

    @pytest.mark.parametrize(
        ("body", "message"),
        [("not json", "not JSON"), ("[]", "not a JSON object"), ('{"app": "snap"}', "not 'link'"),
         ('{"profile_id": 1, "final_state": "success"}', "no job_id"),
         ('{"profile_id": "x", "job_id": "j", "final_state": "success"}', "profile_id is not a number")],
    )  # fmt: skip
    def test_bad_notifications_are_named(self, body: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            W.on_notification(body, lambda n: n)

    def test_the_fake_delivers_sqs_bodies_when_jobs_end(self, certs: Path) -> None:
        received: list[dict[str, Any]] = []
        arrived = threading.Event()
        sink = Flask("sink")

        @sink.post("/sqs")
        def take() -> str:
            received.append(request.get_json())
            arrived.set()
            return ""

        served_sink = serve(sink)
        served = serve_tls(
            fake_wz.create_app(step_seconds=0.05, notify_url=f"{served_sink.url}/sqs"), certs
        )
        try:
            wz = client_for(served.url, certs)
            pid = new_profile(wz)
            job = wz.start_job(pid, mode="bill")  # nobody polls: it ends on its own
            assert arrived.wait(10)
            note = W.notification(received[0])
            assert (note.profile_id, note.job_id, note.ok, note.mode) == (pid, job, True, "bill")
            assert note.new_records == len(wz.bills(pid))
            quiet = wz.start_job(pid, mode="interval", notify=False)
            wz.wait(quiet, poll=0.05)
            assert len(received) == 1
        finally:
            served.stop()
            served_sink.stop()


@pytest.mark.parametrize(
    ("line", "start", "duration"),
    [
        ("Electric usage,2026-01-05,00:00,00:15,0.25,kWh,", "2026-01-05T00:00:00+00:00", 900),
        ("Electric usage,2026-01-05,00:00,00:14,0.25,kWh,", "2026-01-05T00:00:00+00:00", 900),
        ("Electric usage,2026-01-05,23:45,00:00,0.25,kWh,", "2026-01-05T23:45:00+00:00", 900),
        ("Electric usage,2026-01-05,13:00,13:59,0.25,kWh,", "2026-01-05T13:00:00+00:00", 3600),
    ],
)
def test_green_button_csv_source_rows(line: str, start: str, duration: int) -> None:
    text = f"TYPE,DATE,START TIME,END TIME,USAGE,UNITS,NOTES\n{line}\n"
    (row,) = W.source_rows(text, "M1 2026-01")
    assert (row["start"], row["duration"], row["usage"]) == (W.when(start), duration, "0.25")


def test_source_rows_in_a_local_zone_and_unknown_files() -> None:
    text = (
        "TYPE,DATE,START TIME,END TIME,USAGE,UNITS\nElectric usage,2026-07-01,00:00,01:00,1.5,kWh\n"
    )
    (row,) = W.source_rows(text, "M1", "America/Los_Angeles")
    assert row["start"] == W.when("2026-07-01T07:00:00Z")
    with pytest.raises(ProviderError, match="ask for format=json or csv"):
        W.source_rows("<xml/>", "M1 2026-01")
    with pytest.raises(ProviderError, match="row 1 lacks a readable"):
        W.source_rows("TYPE,DATE,START TIME,END TIME,USAGE\nx,2026-01-05,25:00,00:00,1\n", "M1")
