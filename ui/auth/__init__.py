"""Who is using the app: the built-in user store, the three login modes, first-admin bootstrap."""

from ui.auth.principal import UnknownUserError, resolve_principal

__all__ = ["UnknownUserError", "resolve_principal"]
