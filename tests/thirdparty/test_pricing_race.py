"""Two workers pricing one usage point at once (two plans added a moment apart queue two price
jobs): each plan's estimates are written by one of them at a time, neither fails (on
PostgreSQL both deleted the old estimates, then the second's insert met the first's rows)."""

from __future__ import annotations

import re
import threading

from sqlalchemy import func, select

from fakes import wattshift as fake_wattshift
from fakes.common import serve as serve_fake
from tests.scripted import Answer, Scripted
from tests.thirdparty.apps import custodian, storage, third_party, wait
from tests.thirdparty.browsing import Person
from tests.thirdparty.homes import home
from thirdparty_app import db as tp
from thirdparty_app import pricing

__all__ = ["storage"]
TOU_C = "66d811ce52c6fe40859130e8"  # a plan of the WattShift stand-in at 95313


def test_two_workers_price_one_usage_point_at_once(tmp_path, storage):
    wattshift = serve_fake(fake_wattshift.create_app())
    try:
        with (
            Scripted(custodian(lambda seen: Answer(404))) as remote,
            third_party(tmp_path, storage, remote.url,
                        PROVIDERS={"wattshift": {"base_url": wattshift.url, "api_key": "ws-sandbox-key"}}) as served,
        ):  # fmt: skip
            person = Person.sign_up(served.url)
            page = person.upload("home.xml", home(year_before=False)).text
            up = int(
                re.search(r'href="/usage-points/(\d+)"', page.split('id="upload-result"')[1]).group(
                    1
                )
            )
            added = person.post(
                f"{served.url}/usage-points/{up}/pricing",
                data={"zip": "95313", "plan": TOU_C},
                timeout=30,
            )
            assert added.status_code == 200, added.text[:300]

            def plan():
                return served.query(lambda s: s.scalar(select(tp.RatePlan)))

            wait(lambda: plan().status == "priced")
            priced = plan().priced
            assert priced > 0

            start, errors = threading.Barrier(2), []

            def worker():
                with served.app.app_context():
                    start.wait()
                    try:
                        pricing.price_usage_point(up)
                    except Exception as err:  # the test's point: none
                        errors.append(repr(err))

            threads = [threading.Thread(target=worker) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            assert errors == []
            assert (plan().status, plan().priced) == ("priced", priced)
            count = served.query(lambda s: s.scalar(select(func.count()).select_from(tp.PlanCost)))
            assert count == priced
    finally:
        wattshift.server.shutdown()
        wattshift.server.server_close()
