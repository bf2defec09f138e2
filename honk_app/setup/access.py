"""Who may use setup mode: the link from Honk's log, traded once for a browser session.

Whoever reaches a fresh Honk first could register an App of their own, so the setup pages need
the token Honk logs at startup. The token works once: the first visit trades it for an HttpOnly,
SameSite=Strict cookie and a URL without the token, so the link left in the log, a browser's
history or a shared screen opens nothing afterwards. POSTs also need the form key that only pages
shown to that session (or to the browser GitHub sent back with a valid state) carry. Pure: the
routes in flow.py turn these decisions into responses.
"""

from __future__ import annotations

import enum
import hmac
import secrets

COOKIE = "honk_setup"


class Admit(enum.Enum):
    SERVE = "serve"  # the session's browser: show the page
    CLEAN_URL = "clean"  # the session's browser with the spent token in the URL: drop it
    NEW_SESSION = "new"  # the right token, first use: set the cookie, then drop the token
    REFUSE = "refuse"


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class SetupAccess:
    """One token from the log, at most one browser session; `token=None` leaves setup open."""

    def __init__(self, token: str | None) -> None:
        self._token = token
        self._spent = False
        self.session: str | None = None
        self.form_key = secrets.token_urlsafe(32)

    def has_session(self, cookie: str | None) -> bool:
        if self._token is None:
            return True
        return bool(cookie) and self.session is not None and _same(cookie or "", self.session)

    def admit(self, *, cookie: str | None, token: str | None) -> Admit:
        """What a GET of a setup page gets, given its cookie and the `token` in its URL."""
        if self.has_session(cookie):
            return Admit.CLEAN_URL if token and self._token is not None else Admit.SERVE
        if token and self._token is not None and not self._spent and _same(token, self._token):
            self._spent = True
            self.session = secrets.token_urlsafe(32)
            return Admit.NEW_SESSION
        return Admit.REFUSE

    def may_post(self, *, cookie: str | None, form_key: str) -> bool:
        """A form this server showed, sent by the session's browser (the cookie is Strict)."""
        return self.has_session(cookie) and bool(form_key) and _same(form_key, self.form_key)
