"""GET /auth/oauth/{provider}/authorize and /callback: OIDC sign-in (authorization code, state, nonce, PKCE).

`authorize` redirects the browser to the provider; `callback` checks the
single-use `state`, trades the code (with the PKCE verifier) for an ID
token, checks its signature, issuer, audience, expiry and nonce, and
answers with our own token pair in the body (never in a URL).
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache

from flask import redirect, request
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import fields

from integrations.errors import TransientError
from integrations.oidc import OidcClient, OidcError, Pkce
from models.errors import InvalidRequest, NotFound, Unauthorized
from models.users import auth
from settings import Settings
from web.auth.routes import _signed_in, blp
from web.auth.schemas import TokenSchema
from web.auth.tokens import policy
from web.extensions import db, runtime
from web.limits import auth_limit
from web.schemas import CamelSchema

STATE_TTL = 600


@lru_cache(maxsize=8)
def _client(issuer: str, client_id: str, client_secret: str, timeout: float) -> OidcClient:
    return OidcClient(issuer, client_id, client_secret, timeout)


def client_for(settings: Settings, provider: str) -> OidcClient:
    """The configured provider named `provider`; NotFound if OIDC is off or the name differs."""
    if not settings.OIDC_ISSUER or provider != settings.OIDC_PROVIDER:
        raise NotFound(f"no sign-in provider {provider!r}")
    return _client(settings.OIDC_ISSUER, settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET,
                   settings.SERVICE_TIMEOUT * 5)


def redirect_uri(settings: Settings, provider: str) -> str:
    return f"{settings.OIDC_REDIRECT_BASE.rstrip('/')}/api/v1/auth/oauth/{provider}/callback"


class CallbackArgs(CamelSchema):
    code = fields.String(load_default=None)
    state = fields.String(required=True)
    error = fields.String(load_default=None)


@blp.route("/oauth/<provider>/authorize")
class OAuthAuthorize(MethodView):
    decorators = [auth_limit()]

    @blp.response(302, description="To the provider's sign-in page")
    @blp.alt_response(404, description="No such provider")
    def get(self, provider):
        """Start an OIDC sign-in: redirect to the provider with state, nonce and a PKCE challenge."""
        rt = runtime()
        client = client_for(rt.settings, provider)
        state, nonce, pkce = secrets.token_urlsafe(32), secrets.token_urlsafe(32), Pkce.new()
        rt.redis.set(f"auth:oidc:{auth.digest(state)}", json.dumps({"nonce": nonce, "verifier": pkce.verifier,
                                                                   "provider": provider}), ex=STATE_TTL)
        return redirect(client.authorization_url(redirect_uri(rt.settings, provider), state, nonce, pkce))


@blp.route("/oauth/<provider>/callback")
class OAuthCallback(MethodView):
    decorators = [auth_limit()]

    @blp.arguments(CallbackArgs, location="query")
    @blp.response(200, TokenSchema, description="Our token pair (or `mfaRequired` and an `mfaToken`), as /auth/login")
    @blp.alt_response(400, description="Unknown, expired or reused state")
    @blp.alt_response(401, description="The provider refused, or its ID token failed a check")
    @blp.alt_response(502, description="The provider cannot be reached")
    def get(self, args, provider):
        """Finish an OIDC sign-in: check state, trade the code, check the ID token, sign in or create the user."""
        rt = runtime()
        client = client_for(rt.settings, provider)
        pending = rt.redis.getdel(f"auth:oidc:{auth.digest(args['state'])}")
        if pending is None or json.loads(pending)["provider"] != provider:
            raise InvalidRequest("unknown, expired or already used state", {"state": ["invalid"]})
        pending = json.loads(pending)
        if args["error"] or not args["code"]:
            raise Unauthorized("the provider did not sign you in")
        try:
            claims = client.exchange(args["code"], redirect_uri(rt.settings, provider), pending["verifier"],
                                     pending["nonce"])
        except OidcError as exc:
            raise Unauthorized(str(exc)) from None
        except TransientError:
            abort(502, message="the sign-in provider cannot be reached")
        with db().session() as session:
            signin = auth.oidc_sign_in(session, rt.redis, policy(rt.settings), client.issuer, claims,
                                       request.remote_addr)
            return _signed_in(signin)
