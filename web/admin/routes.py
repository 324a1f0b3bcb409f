"""GET/PATCH /settings, GET /security-events and the /api-keys endpoints."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from models.security.events import list_events
from models.security.settings import update_settings, view_settings
from models.users.api_keys import create_api_key, get_api_key, list_api_keys, revoke_api_key
from web.admin.schemas import (
    ApiKeyListSchema,
    ApiKeySchema,
    SecurityEventListArgs,
    SecurityEventPageSchema,
    NewApiKeySchema,
    SettingsSchema,
)
from web.auth.guard import current_actor, key_access, requires
from web.extensions import db, runtime

blp = Blueprint("admin", __name__, url_prefix="/api/v1", description="Settings, security log and API keys")


@blp.route("/settings")
class Settings(MethodView):
    @requires("settings:view")
    @blp.response(200, SettingsSchema)
    def get(self):
        """The shop's runtime settings (admin)."""
        with db().session() as session:
            return {"settings": view_settings(session, current_actor())}

    @requires("settings:update")
    @blp.arguments(SettingsSchema)
    @blp.response(200, SettingsSchema)
    def patch(self, data):
        """Set settings (super admin); a null value removes the key."""
        with db().session() as session:
            return {"settings": update_settings(session, current_actor(), data["settings"],
                                                runtime().settings.SECURITY_ALERT_EMAIL)}


@blp.route("/security-events")
class SecurityEvents(MethodView):
    @requires("security_events:view")
    @blp.arguments(SecurityEventListArgs, location="query")
    @blp.response(200, SecurityEventPageSchema)
    def get(self, args):
        """The security log, newest first (`cursor` → `nextCursor`), filtered by `kind` or `userId`."""
        with db().session() as session:
            events = list_events(session, current_actor(), limit=args["limit"] + 1, before=args["cursor"],
                                 kind=args["kind"], user_id=args["user_id"])
        page = events[:args["limit"]]
        return {"items": page, "next_cursor": str(page[-1].id) if len(events) > args["limit"] else None}


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @requires("api_keys:manage")
    @blp.response(200, ApiKeyListSchema)
    def get(self):
        """Every API key (never the keys themselves)."""
        with db().session() as session:
            return {"items": list_api_keys(session, current_actor())}

    @requires("api_keys:manage")
    @blp.arguments(ApiKeySchema)
    @blp.response(201, NewApiKeySchema)
    def post(self, data):
        """Create a key scoped to named permissions; the key is in this answer only."""
        with db().session() as session:
            row, row.key = create_api_key(session, current_actor(), data["name"], data["scopes"])
            return row


@blp.route("/api-keys/<uuid:key_id>")
class ApiKeyById(MethodView):
    @requires("api_keys:manage")
    @blp.response(200, ApiKeySchema)
    @blp.alt_response(404, description="No such key")
    def get(self, key_id):
        """One key's name, prefix, scopes and last use."""
        with db().session() as session:
            return get_api_key(session, current_actor(), key_id)

    @requires("api_keys:manage")
    @blp.response(204)
    @blp.alt_response(404, description="No such key")
    def delete(self, key_id):
        """Revoke a key: it stops working at once."""
        with db().session() as session:
            revoke_api_key(session, current_actor(), key_id, key_access())
