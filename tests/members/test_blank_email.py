"""No e-mail is NULL, never '': on every path that writes one, and in the database itself.

Both e-mail columns are unique, so a single '' stored for "no e-mail" refuses the next
shopper without one (a 500 at sign-up, once, for everybody after the first).
"""

from __future__ import annotations

import re

import pytest
from allauth.account.models import EmailAddress
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from core.imports import import_file
from members.models import Member, User
from members.services import member_update_profile
from tests.conftest import make_role_user
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = "/accounts/signup/"
VERIFY_URL = "/accounts/phone/verify/"


def signup_without_email(client, sms_outbox, phone: str, name: str) -> None:
    sms_outbox.clear()
    response = client.post(
        SIGNUP_URL,
        {
            "phone": phone,
            "name": name,
            "email": "",
            "password1": "a-long-enough-pass-42",
            "password2": "a-long-enough-pass-42",
            "accept_privacy": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    code = re.search(r"\b(\d{6})\b", sms_outbox[-1].text).group(1)
    assert client.post(VERIFY_URL, {"code": code}).status_code == 302
    client.logout()


def test_two_shoppers_sign_up_without_an_email_and_both_become_members(client, sms_outbox):
    signup_without_email(client, sms_outbox, "13812345678", "王芳")
    signup_without_email(client, sms_outbox, "13912345678", "李娜")

    assert sorted(Member.objects.values_list("name", flat=True)) == ["李娜", "王芳"]
    assert list(User.objects.values_list("email", flat=True)) == [None, None]
    assert list(Member.objects.values_list("email", flat=True)) == [None, None]


@pytest.mark.parametrize("table", ["members_user", "members_member"])
def test_the_database_refuses_a_blank_email(table):
    user = UserFactory(email="someone@example.com")
    member = MemberFactory(email="someone@example.com")
    row = user.pk if table == "members_user" else member.pk

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET email = '' WHERE id = %s", [row])


def test_removing_the_last_email_address_of_a_login_stores_null(client):
    first = UserFactory(email="first@example.com")
    second = UserFactory(email="second@example.com")
    for user in (first, second):
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)

    # allauth sets the login's e-mail to '' when its last address goes.
    for user in (first, second):
        EmailAddress.objects.get(user=user).remove()

    assert list(
        User.objects.filter(pk__in=[first.pk, second.pk]).values_list("email", flat=True)
    ) == [
        None,
        None,
    ]


def test_a_profile_saved_with_a_blank_email_stores_null():
    members = [MemberFactory(email=f"m{n}@example.com") for n in range(2)]

    for member in members:
        member_update_profile(member=member, actor=member.user or UserFactory(), email="  ")

    assert [Member.objects.get(pk=m.pk).email for m in members] == [None, None]


def test_two_till_enrolments_without_an_email_store_null(staff_client, store):
    for phone in ("13812345678", "13912345678"):
        response = staff_client.post(
            "/staff/members/new/",
            {
                "phone": phone,
                "name": "王芳",
                "email": "",
                "store": str(store.pk),
                "accept_privacy": "on",
            },
        )
        assert response.status_code == 302, response.content.decode()[:2000]

    assert list(Member.objects.values_list("email", flat=True)) == [None, None]


def test_an_admin_saved_login_without_an_email_stores_null(client):
    admin = make_role_user("administrator", email="admin@example.com", is_staff=True)
    client.force_login(admin)
    for phone in ("13812345678", "13912345678"):
        response = client.post(
            "/admin/members/user/add/",
            {
                "email": "",
                "name": "新店员",
                "phone": phone,
                "password1": "a-long-pass-9876",
                "password2": "a-long-pass-9876",
            },
        )
        assert response.status_code == 302, response.content.decode()[:3000]

    assert list(User.objects.exclude(pk=admin.pk).values_list("email", flat=True)) == [None, None]


def test_imported_members_without_an_email_store_null():
    content = (
        "source_id,phone,name,email\nB1,13812345678,王芳,\nB2,13912345678,李娜,   \n"
    ).encode()

    import_file(kind="members", file_name="m.csv", content=content, actor=UserFactory())

    assert list(Member.objects.values_list("email", flat=True)) == [None, None]


@pytest.mark.django_db(transaction=True)
def test_the_migration_turns_stored_blank_emails_into_null():
    executor = MigrationExecutor(connection)
    executor.migrate([("members", "0008_staff_stores")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO members_user (password, email, phone_verified, name, is_staff,"
            " is_active, is_superuser, date_joined, pending_enrolment)"
            " VALUES ('!', '', %s, '', %s, %s, %s, CURRENT_TIMESTAMP, '{}')",
            [False, False, True, False],
        )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(User.objects.values_list("email", flat=True)) == [None]
