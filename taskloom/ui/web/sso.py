"""Single sign-on for the web app: Streamlit's own OpenID Connect login (``st.login``), mapped to accounts.

Configured in ``.streamlit/secrets.toml`` under ``[auth]`` (``redirect_uri``,
``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``),
and it needs Authlib installed (``pip install 'Authlib>=1.3.2'``). The
identity provider says who someone is; Taskloom's accounts still say what
they may do: the e-mail address the provider vouches for must be an
account's name or its ``--email``, and that account's role applies. Anyone
else is refused, however well the provider knows them. An address the
provider marks unverified (``email_verified`` false) is refused too.
"""

from __future__ import annotations

from typing import Any, Mapping

import streamlit as st

from taskloom.storage.accounts import Accounts

__all__ = ["configured", "identity", "account_for", "render_button", "sign_out"]


def configured() -> bool:
    """Whether the app's secrets have an ``[auth]`` section (then the login offers single sign-on)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets.toml at all, or one that does not parse: no SSO
        return False


def identity() -> dict[str, Any] | None:
    """The claims of the provider's signed-in user in this browser session, or None."""
    if not configured():
        return None
    try:
        user = st.user
        if not user.get("is_logged_in"):
            return None
        return dict(user.to_dict())
    except Exception:  # noqa: BLE001 - an app not served by Streamlit's server (no user info)
        return None


def account_for(accounts: Accounts, claims: Mapping[str, Any]) -> tuple[str | None, str]:
    """The account the claims stand for: ``(name, "")``, or ``(None, why not)``.

    The provider's ``email`` must be verified (or not marked at all) and equal an account's name or e-mail
    address, compared without case.
    """
    email = str(claims.get("email") or "").strip().lower()
    if not email:
        return None, "the identity provider gave no e-mail address; Taskloom matches accounts by it"
    if claims.get("email_verified") is False:
        return None, f"the identity provider has not verified {email}; sign in with a verified address"
    for user in accounts.list():
        if user.name == email or (user.email and user.email.strip().lower() == email):
            return user.name, ""
    return None, (f"no Taskloom account for {email}; an admin adds one with: taskloom users add {email}"
                  " --role ROLE --no-password (or gives an account --email " + email + ")")


def render_button() -> None:
    """The "Sign in with single sign-on" button (when configured); it hands over to the identity provider."""
    if not configured():
        return
    if st.button("Sign in with single sign-on", key="login_sso", icon=":material/key:"):
        try:
            st.login()
        except Exception as exc:  # noqa: BLE001 - Authlib missing or [auth] incomplete: say which
            st.error(_failure(exc))


def _failure(exc: Exception) -> str:
    if not _has_authlib():
        return ("single sign-on needs Authlib, which is not installed here: pip install 'taskloom[sso]'"
                " (or 'Authlib>=1.3.2'), then restart the web app")
    return f"single sign-on is not working: {exc} (check the [auth] section of .streamlit/secrets.toml)"


def _has_authlib() -> bool:
    try:
        import authlib  # noqa: F401
    except ImportError:
        return False
    return True


def sign_out() -> None:
    """End the provider's session in this browser too (else its cookie would sign the user in again)."""
    try:
        st.logout()
    except Exception:  # noqa: BLE001 - nothing to end
        pass
