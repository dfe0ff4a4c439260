"""From a user (built-in record, OIDC claims, proxy headers) to the Principal that search filters by."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Mapping

from retrieval.models import Principal
from retrieval.settings import Settings
from ui.auth.users import UserRecord, UserStore, clean_groups


class UnknownUserError(LookupError):
    def __init__(self, user: str):
        super().__init__(
            f"no user named {user!r} in the built-in user store; add one with "
            f"`docent users add {user} --groups GROUP,...`"
        )


def principal_for_record(settings: Settings, user: UserRecord) -> Principal:
    groups = list(user.groups)
    if user.is_admin and settings.admin_group not in groups:
        groups.append(settings.admin_group)
    return Principal(user=user.username, groups=groups, is_admin=user.is_admin)


def principal_from_identity(settings: Settings, user: str, groups: list[str]) -> Principal:
    """An identity asserted by OIDC or the reverse proxy: admins are members of the admin group."""
    groups = clean_groups(groups)
    return Principal(user=user, groups=groups, is_admin=settings.admin_group in groups)


def principal_from_oidc_claims(settings: Settings, claims: Mapping[str, object]) -> Principal | None:
    """The user an OIDC login names; None when it names them by an e-mail address the provider
    has not verified (anyone could sign up at a provider with someone else's address).

    Without an ``email`` claim the provider's user name, then its subject, names the user.
    """
    email = claims.get("email")
    if email:
        if not is_true_claim(claims.get("email_verified")):
            return None
        name = email
    else:
        name = claims.get("preferred_username") or claims.get("sub")
    if not name:
        return None
    return principal_from_identity(settings, str(name), split_groups(claims.get(settings.oidc_groups_claim)))


def is_true_claim(value: object) -> bool:
    """``true`` as providers send it: a JSON boolean, or (Cognito and others) the string "true"."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def split_groups(raw: object) -> list[str]:
    """Groups as an identity provider sends them: a list, or a comma/space-separated string."""
    if raw is None:
        return []
    if isinstance(raw, (list, tuple)):
        return [str(g).strip() for g in raw if str(g).strip()]
    text = str(raw)
    parts = text.split(",") if "," in text else text.split()
    return [p.strip() for p in parts if p.strip()]


def resolve_principal(settings: Settings, user: str, groups: list[str] | None = None) -> Principal:
    """The principal for ``--as-user`` on the CLI.

    A name in the built-in store gets its stored role and groups. With ``groups`` given (for
    OIDC/proxy deployments, whose users are not stored here) the identity is taken as stated.
    """
    record = UserStore.from_settings(settings).find(user)
    if record is not None:
        return principal_for_record(settings, record)
    if groups is not None:
        return principal_from_identity(settings, user, groups)
    raise UnknownUserError(user)


class ProxyConfigError(RuntimeError):
    """Proxy mode set up so that anyone who reaches the app could claim any identity."""


def is_loopback(address: str | None) -> bool:
    """``None``/empty means every interface (Streamlit's default), which is not loopback."""
    if not address:
        return False
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def check_proxy_mode(settings: Settings, address: str | None) -> None:
    """Refuse proxy mode on a non-loopback address without a shared secret."""
    if settings.auth_mode == "proxy" and not settings.proxy_secret and not is_loopback(address):
        raise ProxyConfigError(
            f"proxy mode on address {address or '(all interfaces)'!r} needs DOCENT_PROXY_SECRET: without it "
            f"anyone who can reach the app could send {settings.proxy_user_header} and log in as anyone. "
            f"Set DOCENT_PROXY_SECRET and have the proxy send it in {settings.proxy_secret_header}, "
            "or listen on 127.0.0.1 only."
        )


def principal_from_proxy_headers(settings: Settings, headers: Mapping[str, str], address: str | None) -> Principal | None:
    """The identity the authenticating proxy announces, believed only when the request carries the
    shared secret (compared in constant time); None when it does not."""
    check_proxy_mode(settings, address)
    if settings.proxy_secret:
        sent = headers.get(settings.proxy_secret_header) or ""
        if not hmac.compare_digest(sent.encode("utf-8"), settings.proxy_secret.encode("utf-8")):
            return None
    name = (headers.get(settings.proxy_user_header) or "").strip()
    if not name:
        return None
    return principal_from_identity(settings, name, split_groups(headers.get(settings.proxy_groups_header)))
