"""The policy's [contact] escalation settings: validated, and said in plain English."""

from __future__ import annotations

import pytest

from gateway.domain.policy import PolicyError, parse_policy
from gateway.domain.policy_text import render_policy
from tests.plugins.gateway_server import ROOT

BASE = 'version = "t"\n[staff]\nallowed_email_domains = ["example.org"]\n[contact]\n'


def test_the_shipped_policies_name_a_second_contact() -> None:
    for name in ("default.toml", "demo.toml"):
        policy = parse_policy((ROOT / "policies" / name).read_text())
        assert policy.contact.escalate_after_minutes == 30
        assert policy.contact.second_contact == "deputy-safeguarding@example.org"
        text = render_policy(policy)
        assert "within 30 minutes" in text and "deputy-safeguarding@example.org" in text


def test_defaults_without_a_second_contact() -> None:
    policy = parse_policy(BASE)
    assert policy.contact.escalate_after_minutes == 30
    assert policy.contact.second_contact is None
    assert "second contact the organisation has set up" in render_policy(policy)


@pytest.mark.parametrize(
    ("lines", "key"),
    [
        ("escalate_after_minutes = 0", "contact.escalate_after_minutes"),
        ("escalate_after_minutes = 1441", "contact.escalate_after_minutes"),
        ('escalate_after_minutes = "30"', "contact.escalate_after_minutes"),
        ('second_contact = "deputy"', "contact.second_contact"),
        ('second_contact = "a@b.org, c@d.org"', "contact.second_contact"),
    ],
)
def test_bad_contact_settings_are_refused_by_key(lines: str, key: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(BASE + lines + "\n")
    assert refused.value.key == key
