"""Who may use the HTTP API: with ``API_REQUIRE_AUTHENTICATION`` only a caller App Service Authentication
validated, the function key alone is not enough.

App Service Authentication (``infra/modules/function-app-auth.bicep``) answers 401 itself to a request
without a valid Microsoft Entra ID token, and the platform sets ``WEBSITE_AUTH_ENABLED=True`` and injects
the validated principal (``X-MS-CLIENT-PRINCIPAL``, refused from outside). This check is the app's own
second line: it holds when the authentication settings were never deployed, were switched off, or let a
request through unauthenticated (``unauthenticatedClientAction`` changed to allow anonymous callers), so a
production deployment that requires sign-in cannot quietly fall back to the function key.
"""
from __future__ import annotations

AUTHENTICATION_OFF = ("this API requires Microsoft Entra ID authentication (API_REQUIRE_AUTHENTICATION), but App "
                      "Service Authentication is not enabled on the app: every call is refused until it is "
                      "(deploy with apiAuthClientId, docs/DEPLOY.md)")
NO_PRINCIPAL = ("this API requires a Microsoft Entra ID token: send Authorization: Bearer <token for the API's app "
                "registration> with the function key (App Service Authentication validated no caller on this "
                "request)")


def refusal(required: bool, authentication_enabled: bool, principal_header: str | None) -> str | None:
    """Why the request must be refused (answered with 401), or None to serve it.

    ``required``: API_REQUIRE_AUTHENTICATION; ``authentication_enabled``: App Service Authentication is on
    (``WEBSITE_AUTH_ENABLED``); ``principal_header``: the request's ``X-MS-CLIENT-PRINCIPAL``.
    """
    if not required:
        return None
    if not authentication_enabled:
        return AUTHENTICATION_OFF
    if not (principal_header or "").strip():
        return NO_PRINCIPAL
    return None
