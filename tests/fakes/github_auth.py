"""How the fake GitHub authenticates: App JWTs (RS256) and installation tokens (`ghs_...`).

The checks and messages follow GitHub's documented behaviour: a JWT must be signed with the App's
key, name the App in `iss`, not be issued in the future and expire within ten minutes; an
installation token lasts one hour and only opens the repositories of its installation.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.github_state import AppState, IssuedToken, utcnow

TOKEN_LIFETIME = timedelta(hours=1)
JWT_MAX_LIFETIME = timedelta(minutes=10)
CLOCK_DRIFT = timedelta(seconds=60)
LEVELS = {"read": 1, "write": 2, "admin": 3}

BAD_CREDENTIALS = "Bad credentials"
JWT_UNDECODABLE = "A JSON web token could not be decoded"
JWT_EXPIRED = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at "
    "which the assertion expires"
)
JWT_TOO_LONG = "'Expiration time' claim ('exp') is too far in the future"
JWT_IAT_FUTURE = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was "
    "issued"
)
JWT_UNKNOWN_APP = "Integration not found"


class AuthFailure(Exception):
    """A request GitHub would answer with 401; the message is GitHub's."""


def generate_private_key_pem() -> str:
    """A fresh 2048-bit RSA key in PKCS#1 PEM, the format GitHub hands out for Apps."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def random_token(prefix: str, length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length - len(prefix)))


def new_installation_token(
    installation_id: int, permissions: dict[str, str], repositories: list[str] | None
) -> IssuedToken:
    return IssuedToken(
        token=random_token("ghs_", 40),
        installation_id=installation_id,
        expires_at=utcnow() + TOKEN_LIFETIME,
        permissions=dict(permissions),
        repositories=repositories,
    )


def credentials(authorization: str | None) -> str | None:
    """The credential of an `Authorization: token X` or `Authorization: Bearer X` header."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


def verify_app_jwt(token: str | None, apps: dict[int, AppState], now: datetime) -> AppState:
    """The App a JWT authenticates, or AuthFailure with GitHub's message."""
    if token is None:
        raise AuthFailure(JWT_UNDECODABLE)
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
        issuer = int(str(unverified.get("iss")))
    except (jwt.PyJWTError, ValueError) as error:
        raise AuthFailure(JWT_UNDECODABLE) from error
    app = apps.get(issuer)
    if app is None:
        raise AuthFailure(JWT_UNKNOWN_APP)
    public_key = serialization.load_pem_private_key(
        app.private_key_pem.encode(), password=None
    ).public_key()
    try:
        claims = jwt.decode(
            token,
            public_key,  # type: ignore[arg-type]
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "require": ["iat", "exp", "iss"]},
        )
    except jwt.PyJWTError as error:
        raise AuthFailure(JWT_UNDECODABLE) from error
    stamp = now.timestamp()
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or exp <= stamp:
        raise AuthFailure(JWT_EXPIRED)
    if not isinstance(iat, int | float) or iat > stamp + CLOCK_DRIFT.total_seconds():
        raise AuthFailure(JWT_IAT_FUTURE)
    if (
        exp - iat > JWT_MAX_LIFETIME.total_seconds()
        or exp > stamp + (JWT_MAX_LIFETIME + CLOCK_DRIFT).total_seconds()
    ):
        raise AuthFailure(JWT_TOO_LONG)
    return app


def live_token(token: str | None, tokens: dict[str, IssuedToken], now: datetime) -> IssuedToken:
    """The installation token presented, unless unknown or expired (then 401 Bad credentials)."""
    issued = tokens.get(token or "")
    if issued is None or issued.expires_at <= now:
        raise AuthFailure(BAD_CREDENTIALS)
    return issued


def token_covers(issued: IssuedToken, repo_installation_id: int, full_name: str) -> bool:
    """Whether a token may see a repository at all (GitHub answers 404 when it may not)."""
    if issued.installation_id != repo_installation_id:
        return False
    return issued.repositories is None or full_name.lower() in issued.repositories


def has_permission(granted: dict[str, str], name: str, level: str) -> bool:
    have = granted.get(name)
    return have is not None and LEVELS.get(have, 0) >= LEVELS[level]
