"""The @requires guard: 401 for guests, 403 for the wrong role or missing MFA."""

import pytest
from flask.views import MethodView
from flask_smorest import Blueprint

from tests.helpers import bearer, make_user
from web.auth.guard import current_actor, requires


@pytest.fixture
def guarded(app):
    blp = Blueprint("guarded", __name__, url_prefix="/api/v1/guarded")

    @blp.route("")
    class Guarded(MethodView):
        @requires("products:create")
        def post(self):
            return {"role": current_actor().role}

        @requires("products:view")
        def get(self):
            return {"role": current_actor().role}

    app.register_blueprint(blp)
    return app


@pytest.fixture
def users(app):
    with app.extensions["shop"].db.session() as session:
        people = {role: make_user(session, role) for role in ("customer", "staff", "admin")}
        session.expunge_all()
    return people


def test_guests_may_view_but_not_create(guarded, client):
    assert client.get("/api/v1/guarded").get_json() == {"role": "guest"}
    response = client.post("/api/v1/guarded")
    assert response.status_code == 401
    assert response.get_json()["code"] == 401


def test_roles_and_mfa(guarded, client, users):
    assert client.post("/api/v1/guarded", headers=bearer(guarded, users["customer"])).status_code == 403
    assert client.post("/api/v1/guarded", headers=bearer(guarded, users["staff"])).status_code == 403
    no_mfa = client.post("/api/v1/guarded", headers=bearer(guarded, users["admin"], mfa=False))
    assert no_mfa.status_code == 403
    assert "MFA is required" in no_mfa.get_json()["message"]
    assert client.post("/api/v1/guarded", headers=bearer(guarded, users["admin"])).get_json() == {"role": "admin"}


def test_a_forged_token_is_refused(guarded, client, users):
    headers = bearer(guarded, users["admin"])
    headers["Authorization"] = headers["Authorization"][:-4] + "AAAA"
    response = client.get("/api/v1/guarded", headers=headers)
    assert response.status_code == 401
    assert set(response.get_json()) == {"code", "status", "message", "errors"}
