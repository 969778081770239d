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


def test_the_host_is_not_told_who_raised_a_concern_unless_the_policy_says_so() -> None:
    for name in ("default.toml", "demo.toml"):
        shipped = parse_policy((ROOT / "policies" / name).read_text())
        assert shipped.concerns.host_sees_reporter is False
    hidden = parse_policy(BASE)
    assert hidden.concerns.host_sees_reporter is False
    assert "but not who raised it" in render_policy(hidden)
    shown = parse_policy(BASE + "[concerns]\nhost_sees_reporter = true\n")
    assert shown.concerns.host_sees_reporter is True
    assert "and who raised it." in render_policy(shown)
    for bad in ('host_sees_reporter = "yes"', "host_sees_reporter = 1", "tell_everyone = true"):
        with pytest.raises(PolicyError) as refused:
            parse_policy(BASE + f"[concerns]\n{bad}\n")
        assert refused.value.key.startswith("concerns"), refused.value.key
