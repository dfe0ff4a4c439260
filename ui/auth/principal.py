"""From a user (built-in record, OIDC claims, proxy headers) to the Principal that search filters by."""

from __future__ import annotations

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
