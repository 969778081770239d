"""The outbox's decisions, as tables: backoff, retry or give up, escalation, signatures,
and what a message may say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.outbox import (
    BACKOFF_CAP,
    GIVE_UP_AFTER,
    Channel,
    Channels,
    Delivery,
    DeliveryState,
    EmailChannel,
    Event,
    Kind,
    OutboxMessage,
    Recipient,
    after_failure,
    backoff,
    concern_raised,
    escalated,
    escalation_due,
    invite_locked,
    second_contact,
    supervision_breach,
    webhook_body,
    webhook_headers,
    webhook_secret_bytes,
    webhook_signature,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("attempts", "jitter", "wait"),
    [
        (1, 0.0, 2.5 * S),  # half of 5 s
        (1, 0.999, 5 * S - 0.0025 * S),
        (2, 0.0, 5 * S),
        (3, 0.5, 15 * S),  # 20 s: 10 + 5
        (8, 0.0, 320 * S),
        (9, 0.0, 450 * S),  # capped at 15 min: half of it
        (50, 0.999, BACKOFF_CAP - 0.45 * S),
    ],
)
def test_backoff_doubles_with_jitter_and_a_cap(
    attempts: int, jitter: float, wait: timedelta
) -> None:
    assert abs(backoff(attempts, jitter) - wait) < timedelta(milliseconds=1)


@pytest.mark.parametrize(("attempts", "jitter"), [(0, 0.0), (1, 1.0), (1, -0.1)])
def test_backoff_refuses_nonsense(attempts: int, jitter: float) -> None:
    with pytest.raises(ValueError):
        backoff(attempts, jitter)


@pytest.mark.parametrize(
    ("error", "age", "state", "wait"),
    [
        ("connection", timedelta(0), DeliveryState.PENDING, 2.5 * S),
        ("timeout", timedelta(hours=5), DeliveryState.PENDING, 2.5 * S),
        ("temporary", GIVE_UP_AFTER - S, DeliveryState.PENDING, 2.5 * S),
        ("temporary", GIVE_UP_AFTER, DeliveryState.FAILED, timedelta(0)),
        ("rejected", timedelta(0), DeliveryState.FAILED, timedelta(0)),
    ],
)
def test_after_failure(error: str, age: timedelta, state: DeliveryState, wait: timedelta) -> None:
    now = T0 + age
    retry = after_failure(1, T0, now, error, 0.0)
    assert retry.state is state
    assert retry.next_attempt_at == now + wait
    assert retry.error == (error if age < GIVE_UP_AFTER or error == "rejected" else "gave_up")


def _delivery(
    recipient: Recipient = Recipient.DSL,
    state: DeliveryState = DeliveryState.PENDING,
    escalated_at: datetime | None = None,
) -> Delivery:
    message = OutboxMessage(
        "m1", "n1", "o1", Kind.CONCERN_RAISED, recipient, Channel.EMAIL, "s", "b", {}, T0
    )
    return Delivery(message, state, 1, T0, escalated_at=escalated_at)


AFTER = timedelta(minutes=30)


@pytest.mark.parametrize(
    ("delivery", "age", "has_second", "due"),
    [
        (_delivery(), AFTER - S, True, False),
        (_delivery(), AFTER, True, True),
        (_delivery(), AFTER, False, False),  # nobody to escalate to
        (_delivery(state=DeliveryState.DELIVERED), AFTER * 2, True, False),
        (_delivery(state=DeliveryState.FAILED), timedelta(0), True, True),  # failed for good
        (_delivery(escalated_at=T0), AFTER * 2, True, False),  # once only
        (_delivery(Recipient.HOST), AFTER * 2, True, False),
        (_delivery(Recipient.ORG_SYSTEM), AFTER * 2, True, False),
        (_delivery(Recipient.SECOND_CONTACT), AFTER * 2, True, False),
    ],
)
def test_escalation_due(delivery: Delivery, age: timedelta, has_second: bool, due: bool) -> None:
    assert escalation_due(delivery, T0 + age, AFTER, has_second) is due


def test_escalated_copy_goes_to_the_second_contact_by_email() -> None:
    copy = escalated(_delivery().message, "m2", T0 + AFTER, AFTER)
    assert (copy.id, copy.recipient, copy.channel) == (
        "m2",
        Recipient.SECOND_CONTACT,
        Channel.EMAIL,
    )
    assert copy.subject == "Escalated: s" and "30 minutes" in copy.body
    assert copy.notification_id == "n1"


def _email(second: str | None) -> EmailChannel:
    return EmailChannel("h", 25, "none", "f@x.org", "d@x.org", second)


@pytest.mark.parametrize(
    ("channels", "written", "who"),
    [
        (Channels(), None, None),
        (Channels(), "p@x.org", "p@x.org"),
        (Channels(email=_email(None)), "p@x.org", "p@x.org"),
        (Channels(email=_email("c@x.org")), "p@x.org", "c@x.org"),
    ],
)
def test_second_contact(channels: Channels, written: str | None, who: str | None) -> None:
    assert second_contact(channels, written) == who


def _event(n: int) -> Event:
    return Event(
        "o1", "n1", T0, "https://gw/v1/incidents/i1", "s1", "i1", [f"m{i}" for i in range(n)]
    )


def test_what_each_event_tells_whom() -> None:
    concern = concern_raised(_event(2), "Sam R.")
    assert [(m.recipient, m.channel) for m in concern] == [
        (Recipient.DSL, Channel.EMAIL),
        (Recipient.ORG_SYSTEM, Channel.WEBHOOK),
    ]
    assert "Sam R." in concern[0].body and "Sam" not in str(concern[1].payload)
    breach = supervision_breach(_event(2), ["held_children"])
    assert breach[0].recipient is Recipient.DSL and "held children" in breach[0].body
    locked = invite_locked(_event(3), "Jo P.")
    assert [m.recipient for m in locked] == [Recipient.HOST, Recipient.DSL, Recipient.ORG_SYSTEM]
    # The host's copy of anything never names who raised a concern; no message carries an
    # e-mail address.
    for message in (*concern, *breach, *locked):
        assert "@" not in message.body and "@" not in str(message.payload)
    with pytest.raises(ValueError):
        concern_raised(_event(1), "Sam R.")


def test_standard_webhooks_signature_matches_the_specifications_example() -> None:
    # The example in the Standard Webhooks specification's reference libraries.
    secret = webhook_secret_bytes("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    signature = webhook_signature(
        secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhook_headers_use_the_message_id_as_idempotency_key() -> None:
    message = concern_raised(_event(2), "Sam R.")[1]
    body = webhook_body(message)
    headers = webhook_headers(b"k", message, 1700000000, body)
    assert headers["webhook-id"] == message.id == "m1"
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["webhook-signature"] == webhook_signature(b"k", "m1", 1700000000, body)
