"""Who may use setup mode: the link from the log works once, then only its browser's cookie."""

from __future__ import annotations

import pytest

from honk_app.setup.access import Admit, SetupAccess

TOKEN = "t0k3n-from-the-log"


@pytest.mark.parametrize(
    ("cookie", "token", "expected"),
    [
        (None, None, Admit.REFUSE),
        (None, "guess", Admit.REFUSE),
        ("forged-session", None, Admit.REFUSE),
        (None, TOKEN, Admit.NEW_SESSION),
    ],
)
def test_a_fresh_server_admits_only_the_token_from_the_log(
    cookie: str | None, token: str | None, expected: Admit
) -> None:
    assert SetupAccess(TOKEN).admit(cookie=cookie, token=token) is expected


def test_the_token_is_traded_once_for_a_session_cookie() -> None:
    access = SetupAccess(TOKEN)
    assert access.admit(cookie=None, token="guess") is Admit.REFUSE  # a wrong guess spends nothing
    assert access.admit(cookie=None, token=TOKEN) is Admit.NEW_SESSION
    session = access.session
    assert session is not None and len(session) >= 43

    assert access.admit(cookie=session, token=None) is Admit.SERVE
    assert access.admit(cookie=session, token=TOKEN) is Admit.CLEAN_URL  # drop it from the URL
    # another browser, or the link found later in a log or a history: refused
    assert access.admit(cookie=None, token=TOKEN) is Admit.REFUSE
    assert access.admit(cookie="x" + session[1:], token=None) is Admit.REFUSE
    assert access.session == session


@pytest.mark.parametrize(
    ("with_cookie", "form_key", "allowed"),
    [
        (True, "right", True),
        (True, "", False),
        (True, "wrong", False),
        (False, "right", False),  # a cross-site POST carries no Strict cookie
    ],
)
def test_posts_need_the_session_and_the_form_key(
    with_cookie: bool, form_key: str, allowed: bool
) -> None:
    access = SetupAccess(TOKEN)
    access.admit(cookie=None, token=TOKEN)
    cookie = access.session if with_cookie else None
    key = access.form_key if form_key == "right" else form_key
    assert access.may_post(cookie=cookie, form_key=key) is allowed


def test_without_a_token_setup_is_open_but_posts_still_need_the_form_key() -> None:
    access = SetupAccess(None)
    assert access.admit(cookie=None, token=None) is Admit.SERVE
    assert access.admit(cookie=None, token="anything") is Admit.SERVE
    assert access.may_post(cookie=None, form_key=access.form_key)
    assert not access.may_post(cookie=None, form_key="wrong")
    assert SetupAccess(None).form_key != access.form_key
