"""The POS API keeps its OpenAPI document: schemathesis sends every operation generated
requests, valid and invalid, in-process through the WSGI app with a valid bearer token, and
fails on any 5xx and on any answer the document does not describe (status, content type,
body). Bounded examples per operation, so the suite stays quick."""

from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from loyalty_site.wsgi import application
from members.services import api_token_create
from points.models import Reward
from points.services import purchase_record
from tests.factories import MemberFactory, StoreFactory

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture
def wsgi_keeps_the_test_connection():
    """Requests go straight to the WSGI app, not through Django's test client: keep its end
    of request from closing the connection that holds the test's transaction, as the test
    client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(db, wsgi_keeps_the_test_connection) -> dict[str, str]:
    """A token for store SH001, with a member and a reward there for requests to find."""
    store = StoreFactory(code="SH001")
    member = MemberFactory(phone="+8613800000001")
    purchase_record(
        member=member,
        store=store,
        receipt_no="R1",
        occurred_at=member.enrolled_at,
        amount=Decimal(2000),
    )
    Reward.objects.create(
        code="CNY10", kind="amount_off", name_zh="10元券", points_price=1000, amount_off=10
    )
    _token, raw = api_token_create(store=store)
    return {"Authorization": f"Bearer {raw}"}


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@pytest.mark.django_db
def test_every_operation_answers_as_its_document_says(case, bearer):
    # A request the document allows may still name a store, member or reward that does not
    # exist, or lines that do not add up: the documented 400/404/422 answers, not a breach.
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
