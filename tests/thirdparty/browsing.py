"""A person at the third-party app, as a ``requests`` session: signs up or in, and sends the
page's CSRF token with every form it posts to the app (as a browser submitting the form does)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import requests

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


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
