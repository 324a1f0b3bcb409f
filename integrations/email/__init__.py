"""Email providers: `sandbox` (.eml files) and `sendgrid`."""

from __future__ import annotations

from pathlib import Path

from integrations.email.base import EmailProvider, OutgoingEmail

__all__ = ["EmailProvider", "OutgoingEmail", "make_provider"]


def make_provider(name: str, *, outbox_dir: Path, api_key: str = "", host: str = "",
                  timeout: float = 10.0, sandbox_latency: float = 0.0) -> EmailProvider:
    """The provider called `name`, configured with plain values."""
    if name == "sandbox":
        from integrations.email.sandbox import SandboxEmailProvider
        return SandboxEmailProvider(outbox_dir, sandbox_latency)
    if name == "sendgrid":
        from integrations.email.sendgrid import SendGridEmailProvider
        return SendGridEmailProvider(api_key, host, timeout)
    raise ValueError(f"unknown email provider {name!r}")
