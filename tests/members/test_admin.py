"""The Django admin for members: administrators open it; member data changes stay audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from core.models import ImportRun, JobRun
from members.models import AuditEntry, Member, User
from members.services import api_token_create, audit_log
from tests.conftest import make_role_user
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/members/user/",
    "/admin/members/store/",
    "/admin/members/member/",
    "/admin/members/auditentry/",
    "/admin/members/apitoken/",
    "/admin/core/jobrun/",
    "/admin/core/importrun/",
]


@pytest.fixture
def administrator(db):
    return make_role_user("administrator", email="admin@example.com", is_staff=True)


@pytest.fixture
def admin_client(client, administrator):
    client.force_login(administrator)
    return client


@pytest.fixture
def rows(store, administrator):
    member = MemberFactory(name="李晓梅", home_store=store)
    audit_log(actor=administrator, action="member.enrol", target=member, member=member)
    token, raw = api_token_create(store=store, name="POS 1")
    JobRun.objects.create(job="reconcile", business_date="2026-03-01", status="succeeded")
    ImportRun.objects.create(kind="members", file_name="members.csv", sha256="0" * 64, content=b"x")
    return {"member": member, "token": token, "raw": raw}


@pytest.mark.parametrize("url", CHANGELISTS)
def test_an_administrator_opens_every_members_changelist(admin_client, rows, url):
    response = admin_client.get(url)

    assert response.status_code == 200, url


def test_the_admin_index_lists_the_members_models(admin_client):
    page = admin_client.get("/admin/").content.decode()

    for url in CHANGELISTS:
        assert f'href="{url}"' in page


def test_the_admin_is_closed_to_logins_without_admin_access(client, rows, settings):
    settings.LANGUAGE_CODE = "en"
    staff = make_role_user("administrator", email="nostaff@example.com")  # is_staff off
    client.force_login(staff)

    response = client.get("/admin/members/member/")

    # A page that says so, not a trip to the log-in page (which sends a logged-in user
    # straight back here: a redirect loop).
    assert response.status_code == 403
    assert "No access to the admin site" in response.content.decode()


@pytest.mark.parametrize("role", ["marketer", "auditor", "store_staff", "store_manager"])
def test_back_office_roles_without_admin_access_are_refused_with_a_way_to_the_back_office(
    client, role, settings
):
    settings.LANGUAGE_CODE = "en"
    client.force_login(make_role_user(role, email=f"{role}@example.com"))

    response = client.get("/admin/")

    assert response.status_code == 403
    page = response.content.decode()
    assert "The admin site is for administrators." in page
    assert 'href="/staff/"' in page
    # In the back office's frame, not the member portal's (no "My card", no rewards).
    assert "Back office" in page
    assert 'href="/rewards/"' not in page


def test_the_refusal_page_is_in_chinese_by_default(client):
    client.force_login(make_role_user("marketer", email="marketer@example.com"))

    page = client.get("/admin/").content.decode()

    assert "没有 Django 管理站点的访问权限" in page


def test_a_member_is_refused_the_admin_with_a_way_back_to_the_portal(client, settings):
    settings.LANGUAGE_CODE = "en"
    user = UserFactory(email="member@example.com")
    MemberFactory(user=user)
    client.force_login(user)

    response = client.get("/admin/members/member/")

    assert response.status_code == 403
    assert 'href="/staff/"' not in response.content.decode()
    assert 'href="/"' in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_api_token_shows_its_prefix_never_the_token_or_its_hash(admin_client, rows):
    token = rows["token"]
    page = admin_client.get(f"/admin/members/apitoken/{token.pk}/change/").content.decode()

    assert token.prefix in page
    assert rows["raw"] not in page
    assert token.token_hash not in page


def test_audit_entries_cannot_be_changed_or_deleted(admin_client, rows):
    entry = AuditEntry.objects.get(action="member.enrol")

    change = admin_client.post(
        f"/admin/members/auditentry/{entry.pk}/change/", {"action": "member.close"}
    )
    delete = admin_client.post(f"/admin/members/auditentry/{entry.pk}/delete/", {"post": "yes"})

    assert change.status_code == 403
    assert delete.status_code == 403
    entry.refresh_from_db()
    assert entry.action == "member.enrol"


def test_a_profile_correction_in_the_admin_goes_through_the_audited_service(
    admin_client, rows, store
):
    member = rows["member"]
    url = f"/admin/members/member/{member.pk}/change/"
    assert admin_client.get(url).status_code == 200

    response = admin_client.post(
        url,
        {
            "name": "李晓梅",
            "email": "xm@example.com",
            "gender": "F",
            "birthday": "1992-05-20",
            "city": "上海",
            "home_store": store.pk,
            "language": "zh-hans",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    member.refresh_from_db()
    assert member.email == "xm@example.com"
    assert member.city == "上海"
    entry = AuditEntry.objects.get(action="member.update_profile", member=member)
    assert sorted(entry.details["fields"]) == ["birthday", "city", "email", "gender"]
    # Members are enrolled in the back office, not in the admin, and never deleted.
    assert admin_client.get("/admin/members/member/add/").status_code == 403
    assert admin_client.get(f"/admin/members/member/{member.pk}/delete/").status_code == 403
    assert Member.objects.filter(pk=member.pk).exists()


def test_an_administrator_gives_a_staff_login_its_role(admin_client, administrator):
    response = admin_client.post(
        "/admin/members/user/add/",
        {
            "email": "new.staff@example.com",
            "name": "新店员",
            "phone": "",
            "password1": "a-long-pass-9876",
            "password2": "a-long-pass-9876",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    user = User.objects.get(email="new.staff@example.com")
    assert user.check_password("a-long-pass-9876")

    page = admin_client.get(f"/admin/members/user/{user.pk}/change/")
    assert page.status_code == 200
    staff_group = Group.objects.get(name="store_staff")
    response = admin_client.post(
        f"/admin/members/user/{user.pk}/change/",
        {
            "email": "new.staff@example.com",
            "phone": "",
            "name": "新店员",
            "is_active": "on",
            "is_superuser": "on",  # ignored: only a superuser can make another
            "groups": [staff_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(user.groups.values_list("name", flat=True)) == ["store_staff"]
    user.refresh_from_db()
    assert user.phone is None  # blank is NULL: the next login without a phone fits too
    assert not user.is_superuser
