"""The log filter that masks emails, passwords, keys and tokens in every log line: no services."""

import pytest

from logconfig import mask_secrets

pytestmark = pytest.mark.pure


def test_the_masking_filter():
    line = mask_secrets('{"message": "to jane@example.com", "password": "p\\"w", "access_token": "x", '
                        '"key": "shk_0123abcd_secretpart", "auth": "Bearer eyJhbGciOi.eyJzdWIi.c2ln"}')
    assert "jane@" not in line and "j***@example.com" in line
    assert "p\\\"w" not in line and "secretpart" not in line and "eyJzdWIi" not in line


def test_masking_skips_a_pattern_only_where_it_could_not_match():
    """Each pattern is run only on lines holding a text it needs: the result is the same as running all."""
    import logconfig

    def every_pattern(line: str) -> str:
        line = logconfig.SECRET_FIELD.sub(r'\1"[redacted]"', line)
        line = logconfig.JWT.sub("[token]", line)
        line = logconfig.BEARER.sub(r"\1[token]", line)
        line = logconfig.API_KEY.sub(r"\1_[redacted]", line)
        return logconfig.EMAIL.sub(r"\1***@\2", line)

    lines = ['{"message": "request", "path": "/api/v1/orders/1/pay", "status": 202}', '{"PASSWORD": "p"}',
             '{"pa\u017f\u017fword": "p"}', '{"api_\u212aey": "k"}', '{"Api-Key": "k"}', '{"reset_CODE": "1"}',
             "Authorization: Bearer abc.def", "eyJhbGciOi.eyJzdWIi.sig", "key shk_0123abcd_rest",
             "to ada@example.com", '{"Token": "t", "email": "a@b.co"}', "nothing to hide"]
    for line in lines:
        assert mask_secrets(line) == every_pattern(line), line
    assert mask_secrets('{"PASSWORD": "p"}') == '{"PASSWORD": "[redacted]"}'
