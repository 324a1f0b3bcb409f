"""The password rule of registration and password changes: the spec's classes in all of Unicode, no common ones."""

import pytest
from marshmallow import ValidationError

from web.auth.schemas import PASSWORD_MAX, check_password

pytestmark = pytest.mark.pure


@pytest.mark.parametrize("password", ["Passw0rd!Long", "Zürich 2026 ü", "Ünïcödé9・x", "Aa1#" * 32])
def test_good_passwords_pass(password):
    check_password(password)


@pytest.mark.parametrize("password, problem", [
    ("Aa1#", "at least 8 characters"),
    ("alllowercase1!", "one uppercase letter"),
    ("ALLUPPER1!", "one lowercase letter"),
    ("NoDigitsHere!", "one number"),
    ("NoSpecial123", "one special character"),
    ("Tab\tin1Password", "control characters"),
    ("P@ssw0rd", "most common"),
    ("A" * (PASSWORD_MAX + 1), f"at most {PASSWORD_MAX}"),
])
def test_each_broken_rule_is_named(password, problem):
    with pytest.raises(ValidationError) as refused:
        check_password(password)
    assert any(problem in message for message in refused.value.messages), refused.value.messages
