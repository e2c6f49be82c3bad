"""Staff belong to stores: which stores a login acts for, how an administrator sets them,
and enrolment at the till only for the staff member's own stores."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from members.models import AuditEntry, Member, User
from members.selectors import staff_store_ids, staff_stores
from members.services import user_create, user_stores_set
from tests.conftest import make_role_user
from tests.factories import StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

ENROL_URL = "/staff/members/new/"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def beijing(db):
    return StoreFactory(code="BJ001", name="北京王府井店")


# --- the selector ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["store_staff", "store_manager"])
def test_store_staff_and_managers_act_for_the_stores_on_their_login(role, store, beijing):
    user = make_role_user(role, stores=[store])
    assert staff_store_ids(user=user) == frozenset({store.pk})
    assert list(staff_stores(user=user)) == [store]


@pytest.mark.parametrize("role", ["administrator", "marketer", "auditor"])
def test_administrators_marketers_and_auditors_see_every_store(role, store, beijing):
    user = make_role_user(role)
    assert staff_store_ids(user=user) is None
    assert list(staff_stores(user=user)) == [beijing, store]


def test_a_superuser_sees_every_store(store):
    assert staff_store_ids(user=UserFactory(is_superuser=True)) is None


def test_a_login_without_a_store_acts_for_none(store):
    user = make_role_user("store_staff")
    assert staff_store_ids(user=user) == frozenset()
    assert not staff_stores(user=user).exists()


def test_a_closed_store_is_not_offered(store, beijing):
    beijing.is_active = False
    beijing.save()
    user = make_role_user("store_manager", stores=[store, beijing])
    assert list(staff_stores(user=user)) == [store]


# --- setting them -----------------------------------------------------------------------------


def test_a_staff_login_is_created_with_its_stores_and_the_change_is_audited(store, beijing):
    user = user_create(
        email="new@example.com", password="a-long-pass-9876", roles=["store_staff"], stores=[store]
    )
    assert list(user.stores.all()) == [store]
    assert AuditEntry.objects.get(action="user.create").details["stores"] == ["SH001"]

    admin = make_role_user("administrator")
    user_stores_set(user=user, stores=[store, beijing], actor=admin)
    user_stores_set(user=user, stores=[beijing, store], actor=admin)  # no change: no entry

    entry = AuditEntry.objects.get(action="user.stores")
    assert entry.actor == admin
    assert entry.details == {"before": ["SH001"], "after": ["BJ001", "SH001"]}


def test_an_administrator_sets_a_staff_logins_stores_in_the_django_admin(client, store, beijing):
    administrator = make_role_user("administrator", email="admin@example.com", is_staff=True)
    client.force_login(administrator)
    user = make_role_user("store_staff", email="clerk@example.com")
    url = f"/admin/members/user/{user.pk}/change/"

    html = client.get(url).content.decode()
    assert 'name="stores"' in html

    response = client.post(
        url,
        {
            "email": "clerk@example.com",
            "phone": "",
            "name": "店员",
            "is_active": "on",
            "groups": [Group.objects.get(name="store_staff").pk],
            "stores": [beijing.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(user.stores.all()) == [beijing]
    entry = AuditEntry.objects.get(action="user.stores")
    assert entry.actor == administrator
    assert entry.details == {"before": [], "after": ["BJ001"]}


def test_the_demo_staff_and_manager_work_at_sh001_and_a_rerun_keeps_it(store):
    call_command("seed_demo", "--members", "0", stdout=StringIO())
    for email in ("staff@example.com", "manager@example.com"):
        user = User.objects.get(email=email)
        assert list(user.stores.values_list("code", flat=True)) == ["SH001"]
    for email in ("admin@example.com", "marketer@example.com", "auditor@example.com"):
        assert staff_store_ids(user=User.objects.get(email=email)) is None

    # A demo loaded before logins had stores gets them on the next run, once.
    User.objects.get(email="staff@example.com").stores.clear()
    call_command("seed_demo", "--members", "0", stdout=StringIO())
    call_command("seed_demo", "--members", "0", stdout=StringIO())
    staff = User.objects.get(email="staff@example.com")
    assert list(staff.stores.values_list("code", flat=True)) == ["SH001"]
    assert AuditEntry.objects.filter(action="user.stores").count() == 1


# --- enrolment at the till --------------------------------------------------------------------


def enrol_data(store, **change):
    return {
        "phone": "13912345678",
        "name": "王小明",
        "store": store.pk,
        "accept_privacy": "on",
        **change,
    }


def store_options(html: str) -> list[str]:
    select = re.search(r'<select name="store".*?</select>', html, re.S).group(0)
    return re.findall(r"<option[^>]*>([^<]*)</option>", select)


def test_the_enrolment_form_offers_only_the_staff_members_stores(staff_client, store, beijing):
    html = staff_client.get(ENROL_URL).content.decode()
    assert store_options(html) == [str(store)]


def test_a_store_staff_member_cannot_enrol_a_member_for_another_store(staff_client, beijing):
    response = staff_client.post(ENROL_URL, enrol_data(beijing))
    assert response.status_code == 400
    assert "You can only do this for your own stores." in response.content.decode()
    assert not Member.objects.exists()


def test_a_store_staff_member_enrols_at_their_store(staff_client, store):
    response = staff_client.post(ENROL_URL, enrol_data(store))
    assert response.status_code == 302
    assert Member.objects.get().enrolment_store == store


def test_a_staff_member_without_a_store_is_told_to_ask_an_administrator(client, store):
    client.force_login(make_role_user("store_staff"))
    message = "Ask an administrator to add your store to your account."
    assert message in client.get(ENROL_URL).content.decode()
    response = client.post(ENROL_URL, enrol_data(store))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Member.objects.exists()


def test_an_administrator_enrols_at_any_store(client, store, beijing):
    client.force_login(make_role_user("administrator"))
    assert store_options(client.get(ENROL_URL).content.decode()) == [str(beijing), str(store)]
    response = client.post(ENROL_URL, enrol_data(beijing))
    assert response.status_code == 302
    assert Member.objects.get().enrolment_store == beijing
