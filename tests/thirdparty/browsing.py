"""A person at the third-party app, as a ``requests`` session: signs up or in, and sends the
page's CSRF token with every form it posts to the app (as a browser submitting the form does)."""

from __future__ import annotations

import html
import itertools
import re
import time
from typing import Any

import requests

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]+)">')


def csrf_token(html: str) -> str:
    found = TOKEN.search(html)
    if found is None:
        raise AssertionError("the page has no CSRF token")
    return found.group(1)


class Person(requests.Session):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.token = ""
        self.email = ""

    @classmethod
    def sign_up(
        cls, base: str, email: str | None = None, password: str = PASSWORD, name: str = ""
    ) -> Person:
        person = cls(base)
        person.email = email or f"customer{next(_numbers)}@example.com"
        page = person.get(f"{base}/signup", timeout=30)
        done = person.post(
            f"{base}/signup",
            timeout=30,
            data={
                "email": person.email,
                "password": password,
                "name": name,
                "csrf_token": csrf_token(page.text),
            },
        )
        assert done.status_code == 200 and done.url == f"{base}/", done.text[:500]
        person.refresh_token()
        return person

    @classmethod
    def sign_in(cls, base: str, email: str, password: str = PASSWORD) -> Person:
        person = cls(base)
        person.email = email
        page = person.get(f"{base}/login", timeout=30)
        done = person.post(
            f"{base}/login",
            timeout=30,
            data={"email": email, "password": password, "csrf_token": csrf_token(page.text)},
        )
        assert done.status_code == 200, done.text[:500]
        person.refresh_token()
        return person

    def refresh_token(self) -> None:
        """The session's CSRF token (a new session has a new one: after signing in)."""
        self.token = csrf_token(self.get(f"{self.base}/account", timeout=30).text)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if method.upper() == "POST" and url.startswith(self.base) and self.token:
            data = kwargs.get("data")
            if data is None or isinstance(data, dict):
                kwargs["data"] = {"csrf_token": self.token, **(data or {})}
        return super().request(method, url, *args, **kwargs)

    def connect(self, name: str, **form: str) -> requests.Response:
        """Press a connect button (a custodian's or a provider's that sends the browser to its
        page): the POST, then on as the browser goes (the page's refresh)."""
        page = self.post(f"{self.base}/connect/{name}", data=form, timeout=30)
        found = REFRESH.search(page.text)
        if found is None:
            return page
        return self.get(html.unescape(found.group(1)), timeout=60)

    def upload(self, name: str, content: bytes, timeout: float = 120) -> requests.Response:
        """Upload a file and wait for the worker to finish with it: the upload's final page."""
        sent = self.post(f"{self.base}/upload", files={"file": (name, content)}, timeout=30)
        assert sent.status_code == 200 and "/uploads/" in sent.url, sent.text[:300]
        deadline = time.monotonic() + timeout
        while not self.get(f"{sent.url}/status", timeout=30).json()["finished"]:
            assert time.monotonic() < deadline, f"{name}: the upload did not finish"
            time.sleep(0.1)
        return self.get(sent.url, timeout=30)
