"""Two dispatch workers at once on PostgreSQL: every message goes out exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from campaigns import messages
from campaigns.messages import messages_enqueue, outbox_dispatch
from campaigns.models import OutboxMessage

from .outbox_world import NOON, campaign, member

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_three_workers_dispatching_together_send_each_message_once(monkeypatch, sms_outbox):
    # Small rounds, so the workers' claims interleave many times.
    monkeypatch.setattr(messages, "DISPATCH_BATCH", 20)
    members = [member(sms=True, email=False) for _ in range(300)]
    messages_enqueue(campaign=campaign(sms=True), member_ids=[m.pk for m in members], now=NOON)
    barrier = threading.Barrier(3)
    sent: list[int] = []
    errors: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            sent.append(outbox_dispatch(now=NOON))
        except Exception as error:  # reported below: a worker must not fail
            errors.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(sent) == 300
    phones = [text.phone for text in sms_outbox]
    assert len(phones) == 300 and set(phones) == {m.phone for m in members}
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
