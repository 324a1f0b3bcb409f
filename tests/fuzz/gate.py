"""The schema fuzzer run over every operation the served OpenAPI document lists, as each kind of caller.

For each operation and caller it draws `cases` requests (half that fit the
schema, half that do not) and records every answer that is a 5xx or does not
validate against `/api/openapi.json`. Nothing is hard-coded per endpoint, so
an endpoint added later is fuzzed as soon as the document lists it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import uuid

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.helpers import bearer, make_user

CHECKS = [not_a_server_error, response_schema_conformance]
ADDRESS = {"firstName": "Ada", "lastName": "Lovelace", "line1": "12 Analytical Row", "city": "London",
           "postalCode": "N1 9GU", "country": "GB"}
ROLES = ("guest", "customer", "staff", "admin")


@dataclasses.dataclass
class Tally:
    cases: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)
    statuses: collections.Counter = dataclasses.field(default_factory=collections.Counter)


def callers(app) -> tuple[dict, dict]:
    """For a guest, a customer, a staff member and an admin: a function giving fresh auth headers.

    Fresh for every request, because the fuzzer also signs out, changes
    passwords and roles, which ends the sessions of earlier tokens.
    """
    with app.extensions["shop"].db.session() as session:
        people = {role: make_user(session, role) for role in ROLES[1:]}
        people["subject"] = make_user(session, "customer")  # the one whose id /users/{user_id} gets
    headers = {"guest": dict, **{role: functools.partial(bearer, app, people[role], mfa=True) for role in ROLES[1:]}}
    return headers, people


def seed(app, headers: dict, people: dict) -> dict[str, str]:
    """Real rows made through the API, by path parameter name, so that generated requests also meet them."""
    client = app.test_client()

    def made(path, role, body):
        response = client.post(path, json=body, headers=headers[role]())
        assert response.status_code == 201, (path, response.json)
        return response.json

    category = made("/api/v1/categories", "admin", {"name": "Kitchen"})
    product = made("/api/v1/products", "admin", {"name": "Teapot", "categoryId": category["id"], "variants": [
        {"sku": f"SKU-{uuid.uuid4().hex[:8]}", "price": "12.50", "currency": "EUR", "stock": 50}]})
    variant = product["variants"][0]
    order = made("/api/v1/orders", "customer", {"items": [{"variantId": variant["id"], "quantity": 1}],
                                                "shippingAddress": ADDRESS})
    address = made("/api/v1/users/me/addresses", "customer", ADDRESS)
    key = made("/api/v1/api-keys", "admin", {"name": "feed", "scopes": ["products:view"]})
    return {"category_id": category["id"], "product_id": product["id"], "variant_id": variant["id"],
            "order_id": order["id"], "address_id": address["id"], "key_id": key["id"],
            "user_id": str(people["subject"].id), "provider": app.extensions["shop"].settings.OIDC_PROVIDER}


def run(app, cases: int, seed_value: int = 0) -> dict[tuple[str, str], Tally]:
    """Fuzz every operation as every caller; returns the tally per (operation, caller).

    An operation whose path names known rows gets a third of its cases with
    those ids (and data that fit the schema), a third with generated ids,
    and a third that break the schema; any other operation, half and half.
    """
    headers_of, people = callers(app)
    known = seed(app, headers_of, people)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    tallies: dict[tuple[str, str], Tally] = {}
    access_log = logging.getLogger("web.access")
    level, _ = access_log.level, access_log.setLevel(logging.WARNING)  # thousands of lines say nothing here
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            names = [name for name in known if "{" + name + "}" in operation.path]
            plans = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
            if names:
                plans.insert(0, (GenerationMode.POSITIVE, {name: known[name] for name in names}))
            for role, headers in headers_of.items():
                tally = tallies[(operation.label, role)] = Tally()
                for mode, path_parameters in plans:
                    _fuzz(operation, mode, path_parameters, role, headers, max(1, cases // len(plans)),
                          seed_value, tally)
    finally:
        access_log.setLevel(level)
    return tallies


def _fuzz(operation, mode, path_parameters, role, headers, cases, seed, tally: Tally) -> None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @hypothesis_settings(max_examples=cases, deadline=None, database=None, derandomize=seed == 0,
                         phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def fuzz(case):
        tally.cases += 1
        # The caller's own credentials, never generated ones (a guest sends none).
        generated = {name: value for name, value in (case.headers or {}).items()
                     if name.lower() not in ("authorization", "x-api-key")}
        case.headers = generated
        response = case.call(headers={**generated, **headers()})
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:  # recorded, reported together at the end
            body = response.text[:300]
            for failure in group.exceptions:
                tally.failures.append(f"{operation.label} as {role} [{mode.value}] -> {response.status_code} {body}\n"
                                      f"{failure.title}: {failure.message[:1500]}")

    if seed:
        fuzz = hypothesis_seed(seed)(fuzz)
    try:
        fuzz()
    except Unsatisfiable:  # an operation without parameters has no request that breaks its schema
        if mode is GenerationMode.POSITIVE:
            raise


def table(tallies: dict[tuple[str, str], Tally]) -> str:
    """Cases, 5xx and schema failures per caller, and the totals."""
    rows = collections.defaultdict(lambda: [0] * 5)
    for (_, role), tally in tallies.items():
        row = rows[role]
        row[0] += tally.cases
        for status, count in tally.statuses.items():
            row[1 if status < 400 else 2 if status < 500 else 3] += count
        row[4] += len(tally.failures)
    lines = ["| caller | cases | 2xx/3xx | 4xx | 5xx | failed checks |", "|---|---:|---:|---:|---:|---:|"]
    for role in ROLES:
        lines.append("| {} | {:,} | {:,} | {:,} | {} | {} |".format(role, *rows[role]))
    total = [sum(row[i] for row in rows.values()) for i in range(5)]
    operations = len({operation for operation, _ in tallies})
    lines.append("| all ({} operations) | {:,} | {:,} | {:,} | {} | {} |".format(operations, *total))
    return "\n".join(lines)
