"""/users/me, /users/me/permissions, /users/me/addresses and /users (administration)."""

from __future__ import annotations

import uuid

from flask.views import MethodView
from flask_smorest import Blueprint

from models.retention.erasure import erase_on_request
from models.users import accounts
from models.users.auth import lift_lockout
from models.users.permissions import permissions_of
from models import cursors
from web.auth.guard import SECURITY, claims_or_none, current_actor, requires
from web.auth.tokens import policy
from web.extensions import db, runtime
from web.users.schemas import (
    AddressListSchema,
    AddressPatchSchema,
    AddressSchema,
    AdminUserUpdateSchema,
    LockoutLiftedSchema,
    PermissionsSchema,
    ProfileSchema,
    ProfileUpdateSchema,
    UserListArgs,
    UserPageSchema,
)

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Profiles, addresses and administration")


def _session_id() -> uuid.UUID | None:
    claims = claims_or_none() or {}
    return uuid.UUID(claims["sid"]) if claims.get("sid") else None


@blp.route("/me")
class Me(MethodView):
    @requires("users:view_own")
    @blp.response(200, ProfileSchema)
    def get(self):
        """The caller's profile."""
        with db().session() as session:
            return accounts.get_me(session, current_actor())

    @requires("users:update_own")
    @blp.arguments(ProfileUpdateSchema())
    @blp.response(200, ProfileSchema)
    @blp.alt_response(400, description="The current password is wrong")
    def patch(self, data):
        """Change names, or the password (with `currentPassword`; every other session ends)."""
        rt = runtime()
        with db().session() as session:
            return accounts.update_me(session, rt.redis, policy(rt.settings), current_actor(), data, _session_id())

    @requires("users:erase_own")
    @blp.response(204, description="Personal data erased; orders kept for their legal period")
    @blp.alt_response(409, description="The last super admin cannot be erased")
    def delete(self):
        """Erase the caller's account: names, email, addresses, MFA, keys and sessions at once (docs/retention.md)."""
        _erase(current_actor().user_id)


@blp.route("/me/permissions")
class MyPermissions(MethodView):
    @blp.doc(security=[{}, *SECURITY])
    @blp.response(200, PermissionsSchema)
    def get(self):
        """The caller's allowed `resource:action` pairs (a guest's too), for UIs."""
        actor = current_actor()
        if actor.api_key_id:
            return {"role": "api_key", "permissions": sorted(actor.scopes)}
        return {"role": actor.role.value, "permissions": permissions_of(actor.role)}


@blp.route("/me/addresses")
class MyAddresses(MethodView):
    @requires("users:view_own")
    @blp.response(200, AddressListSchema)
    def get(self):
        """The caller's addresses."""
        with db().session() as session:
            return {"items": accounts.list_addresses(session, current_actor())}

    @requires("users:update_own")
    @blp.arguments(AddressSchema())
    @blp.response(201, AddressSchema)
    def post(self, data):
        """Add an address."""
        with db().session() as session:
            return accounts.add_address(session, current_actor(), data)


@blp.route("/me/addresses/<uuid:address_id>")
class MyAddress(MethodView):
    @requires("users:view_own")
    @blp.response(200, AddressSchema)
    @blp.alt_response(404, description="No such address among the caller's")
    def get(self, address_id):
        """One of the caller's addresses."""
        with db().session() as session:
            return accounts.get_address(session, current_actor(), address_id)

    @requires("users:update_own")
    @blp.arguments(AddressPatchSchema(partial=True))
    @blp.response(200, AddressSchema)
    @blp.alt_response(404, description="No such address among the caller's")
    def patch(self, data, address_id):
        """Change one of the caller's addresses."""
        with db().session() as session:
            return accounts.update_address(session, current_actor(), address_id, data)

    @requires("users:update_own")
    @blp.response(204)
    @blp.alt_response(404, description="No such address among the caller's")
    def delete(self, address_id):
        """Delete one of the caller's addresses."""
        with db().session() as session:
            accounts.delete_address(session, current_actor(), address_id)


def _decode_cursor(cursor: str | None) -> tuple | None:
    return cursors.read_newest_first(cursor, "users")


def _encode_cursor(user) -> str:
    return cursors.newest_first("users", user)


@blp.route("")
class Users(MethodView):
    @requires("users:view_all")
    @blp.arguments(UserListArgs(), location="query")
    @blp.response(200, UserPageSchema)
    def get(self, args):
        """Every account, oldest first, a page at a time (`cursor` → `nextCursor`)."""
        with db().session() as session:
            users = accounts.list_users(session, current_actor(), limit=args["limit"] + 1,
                                        after=_decode_cursor(args["cursor"]), role=args["role"])
        page = users[:args["limit"]]
        return {"items": page, "next_cursor": _encode_cursor(page[-1]) if len(users) > args["limit"] else None}


@blp.route("/<uuid:user_id>")
class UserById(MethodView):
    @requires("users:view_all", "users:view_own")
    @blp.response(200, ProfileSchema)
    @blp.alt_response(404, description="No such user (or not the caller's own)")
    def get(self, user_id):
        """Any account (admin), or the caller's own."""
        with db().session() as session:
            return accounts.get_user(session, current_actor(), user_id)

    @requires("users:update_all", "users:update_own")
    @blp.arguments(AdminUserUpdateSchema())
    @blp.response(200, ProfileSchema)
    @blp.alt_response(404, description="No such user")
    def patch(self, data, user_id):
        """Change any account, its role included (admin; a role change ends all its sessions), or one's own names."""
        rt = runtime()
        with db().session() as session:
            return accounts.update_user(session, rt.redis, policy(rt.settings), current_actor(), user_id, data)

    @requires("users:erase_all", "users:erase_own")
    @blp.response(204, description="Personal data erased; orders kept for their legal period")
    @blp.alt_response(404, description="No such user (or already erased)")
    @blp.alt_response(409, description="The last super admin cannot be erased")
    def delete(self, user_id):
        """Erase any account (admin with MFA), or the caller's own, on the same path as the inactivity purge."""
        _erase(user_id)


@blp.route("/<uuid:user_id>/unlock")
class UserUnlock(MethodView):
    @requires("users:update_all")
    @blp.response(200, LockoutLiftedSchema)
    @blp.alt_response(404, description="No such user")
    def post(self, user_id):
        """Lift a sign-in lockout before it expires (admin with MFA); recorded as a security event."""
        rt, actor = runtime(), current_actor()
        with db().session() as session:
            user = accounts.get_user(session, actor, user_id)
            return {"was_locked": lift_lockout(session, rt.redis, actor, user.email)}


def _erase(user_id: uuid.UUID) -> None:
    rt = runtime()
    with db().session() as session:
        erase_on_request(session, current_actor(), user_id, rt.redis, policy(rt.settings))

