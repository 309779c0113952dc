"""Notifications: the custodian POSTs a BatchList of resource URIs to a third party's
notification URI, after a configurable delay, retrying with exponential backoff while the third
party is down (Huey: SQLite storage by default, Redis with ``QUEUE_URL=redis://...``).

The worker is ``flask --app datacustodian worker``; ``EMBEDDED_WORKER`` (on for ``make run``
and the tests) runs one inside the web process instead.
"""

from __future__ import annotations

import logging

import requests
from flask import Flask, current_app
from huey.api import Huey

import espi
from appkit import queue

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The third party did not take the notification (retried)."""


def make_huey(app: Flask) -> Huey:
    huey = queue.make_huey(app, "datacustodian")
    retries = app.config["NOTIFY_RETRIES"]
    backoff_start = app.config["NOTIFY_RETRY_DELAY"]

    @huey.task(retries=retries, retry_delay=backoff_start, retry_backoff=2, name="deliver")
    def deliver(url: str, body: bytes, timeout: float) -> None:
        try:
            resp = requests.post(
                url, data=body, headers={"Content-Type": "application/atom+xml"}, timeout=timeout
            )
        except requests.RequestException as err:
            log.warning("notification to %s failed: %s (will retry)", url, err)
            raise DeliveryFailed(str(err)) from err
        if resp.status_code >= 300:
            log.warning("notification to %s answered %s (will retry)", url, resp.status_code)
            raise DeliveryFailed(f"HTTP {resp.status_code}")
        log.info("notification delivered to %s", url)

    app.extensions["dc.huey"] = huey
    app.extensions["dc.deliver"] = deliver
    return huey


def notify(notification_uri: str, resource_uris: list[str]) -> None:
    """Send a BatchList to a third party, after ``NOTIFY_DELAY`` seconds."""
    body = espi.dumps(espi.BatchList(resources=resource_uris))
    deliver = current_app.extensions["dc.deliver"]
    deliver.schedule(
        (notification_uri, body, current_app.config["NOTIFY_TIMEOUT"]),
        delay=current_app.config["NOTIFY_DELAY"],
    )
