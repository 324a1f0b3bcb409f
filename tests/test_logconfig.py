"""The log filter that masks emails, passwords, keys and tokens in every log line: no services."""

import pytest

from logconfig import mask_secrets

pytestmark = pytest.mark.pure


def test_the_masking_filter():
    line = mask_secrets('{"message": "to jane@example.com", "password": "p\\"w", "access_token": "x", '
                        '"key": "shk_0123abcd_secretpart", "auth": "Bearer eyJhbGciOi.eyJzdWIi.c2ln"}')
    assert "jane@" not in line and "j***@example.com" in line
    assert "p\\\"w" not in line and "secretpart" not in line and "eyJzdWIi" not in line
