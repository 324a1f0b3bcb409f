"""Which GraphQL queries are public, and so may be answered from the guests' shared cache: parsing only."""

from __future__ import annotations

import pytest

from web.graphql.view import only_public_fields

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("query, public", [
    ("{ products(first: 2) { nodes { name } } }", True),
    ("query Q { product(id: \"x\") { name } categories { name } __typename }", True),
    ("{ ... on Query { products { nodes { name } } } }", True),
    ("query { ...P } fragment P on Query { products { nodes { name } } }", True),
    ("{ me { email } }", False),
    ("{ products { nodes { name } } orders { nodes { id } } }", False),
    ("{ ... on Query { me { email } } }", False),
    ("query { ...P } fragment P on Query { importJobs { nodes { id } } }", False),
    ("query { ...P } fragment P on Query { ...P }", False),
    ("query A { products { nodes { name } } } query B { me { email } }", False),
    ("mutation { products { nodes { name } } }", False),
    ("{ __schema { types { name } } }", False),
    ("{ products(", False),
    ("", False),
])
def test_which_queries_are_public(query, public):
    assert only_public_fields(query) is public
