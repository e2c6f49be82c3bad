"""`bench campaigns`: it launches and sends a real campaign, says how fast, and cleans up."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, CampaignMember, OutboxMessage
from members.models import Member
from points.jobs import reconcile_job
from points.models import LedgerTransaction
from tests.factories import MemberFactory


@pytest.mark.django_db(transaction=True)
def test_bench_campaigns_posts_messages_computes_results_and_removes_its_campaigns():
    Member.objects.bulk_create([MemberFactory.build(consent_sms=True) for _ in range(60)])
    out = StringIO()

    call_command(
        "bench",
        "campaigns",
        "--members",
        "50",
        "--points",
        "30",
        stdout=out,
        stderr=StringIO(),
    )

    line, sms, results = [json.loads(text) for text in out.getvalue().strip().splitlines()]
    assert line["bench"] == "campaign_bonus"
    assert line["members"] == 50
    posted = LedgerTransaction.objects.filter(source="campaign")
    # Every treated member once, 30 points each; the holdout nothing.
    assert line["postings"] == line["treated"] == line["sent"] == posted.count()
    assert 40 <= line["treated"] < 50
    assert {t.member_amount for t in posted} == {30}
    assert line["postings_per_s"] > 0
    # The campaign and its audience are gone; the ledger rows stay, and it says so.
    assert not Campaign.objects.exists() and not CampaignMember.objects.exists()
    assert line["ledger_rows_kept"] == posted.count()
    assert sms["bench"] == "campaign_messages"
    assert sms["enqueued"] == sms["dispatched"] == 50 and sms["statuses"] == {"sent": 50}
    assert not OutboxMessage.objects.exists()
    assert results["bench"] == "campaign_results"
    assert results["members"] == 50 and results["results_s"] >= 0
    _checked, details = reconcile_job(timezone.localdate())
    assert "failed" not in details
