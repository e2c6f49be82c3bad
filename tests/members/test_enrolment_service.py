"""The one enrolment service, as used by the till, the API and online sign-up."""

from __future__ import annotations

import datetime

import pytest

from members.models import AuditEntry, ConsentEvent, Member
from members.services import (
    Consents,
    InvalidMemberData,
    MemberAlreadyExists,
    member_close,
    member_enroll,
    member_set_consent,
    member_signup_complete,
)
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_enrolling_at_the_till_creates_a_member_with_consent_and_an_audit_entry(store, staff_user):
    member = member_enroll(
        phone="138 1234 5678",
        name=" 张伟 ",
        channel=Member.Channel.STORE,
        store=store,
        birthday=datetime.date(1990, 5, 17),
        consents=Consents(privacy_version="2026-01", sms=True, email=False),
        actor=staff_user,
    )
    assert member.phone == "+8613812345678"
    assert member.name == "张伟"
    assert member.home_store == store
    assert member.enrolled_by == staff_user
    assert member.consent_sms is True
    assert member.consent_email is False
    assert member.privacy_notice_version == "2026-01"
    kinds = sorted(member.consent_events.values_list("kind", "granted"))
    assert kinds == [("email", False), ("privacy_notice", True), ("sms", True)]
    entry = AuditEntry.objects.get(action="member.enrol")
    assert entry.actor == staff_user
    assert entry.member == member


def test_a_phone_that_is_already_a_member_is_refused_and_nothing_is_written(store):
    existing = MemberFactory(phone="+8613812345678")
    with pytest.raises(MemberAlreadyExists) as error:
        member_enroll(phone="13812345678", name="李娜", channel=Member.Channel.STORE, store=store)
    assert error.value.member == existing
    assert Member.objects.count() == 1
    assert AuditEntry.objects.count() == 0


def test_invalid_input_names_every_bad_field_and_writes_nothing(store):
    with pytest.raises(InvalidMemberData) as error:
        member_enroll(
            phone="12345",
            name="",
            channel=Member.Channel.STORE,
            email="not-an-email",
            gender="X",
            birthday=datetime.date(2999, 1, 1),
        )
    assert set(error.value.errors) == {"phone", "name", "email", "gender", "birthday"}
    assert Member.objects.count() == 0


def test_online_signup_with_a_till_members_phone_links_the_same_member(store):
    till_member = member_enroll(
        phone="13812345678", name="王芳", channel=Member.Channel.STORE, store=store
    )
    user = UserFactory(email="wangfang@example.com", phone="+8613812345678", phone_verified=True)
    user.pending_enrolment = {"privacy_version": "2026-01", "consent_sms": True}
    user.save()

    member = member_signup_complete(user=user)

    assert member.pk == till_member.pk
    assert Member.objects.count() == 1
    member.refresh_from_db()
    assert member.user == user
    assert member.email == "wangfang@example.com"
    assert member.consent_sms is True
    assert member.enrolment_channel == Member.Channel.STORE


def test_a_phone_already_linked_to_a_login_cannot_be_claimed_by_another_signup():
    owner = UserFactory(phone="+8613812345678", phone_verified=True)
    member_signup_complete(user=owner)
    intruder = UserFactory()
    with pytest.raises(MemberAlreadyExists):
        member_enroll(
            phone="13812345678", name="冒名者", channel=Member.Channel.ONLINE, user=intruder
        )
    assert Member.objects.get().user == owner


def test_consent_changes_are_recorded_as_history_only_when_they_change():
    member = MemberFactory(consent_sms=False)
    member_set_consent(member=member, kind="sms", granted=True, source="portal", actor=None)
    member_set_consent(member=member, kind="sms", granted=True, source="portal", actor=None)
    member_set_consent(member=member, kind="sms", granted=False, source="portal", actor=None)
    history = list(member.consent_events.order_by("id").values_list("granted", flat=True))
    assert history == [True, False]
    member.refresh_from_db()
    assert member.consent_sms is False


def test_closing_an_account_anonymises_the_member_but_keeps_the_row_and_number():
    user = UserFactory(email="close@example.com", phone="+8613812345678", phone_verified=True)
    member = member_signup_complete(user=user)
    number = member.member_no

    member_close(member=member, actor=user)

    member.refresh_from_db()
    user.refresh_from_db()
    assert member.member_no == number
    assert member.status == Member.Status.ANONYMISED
    assert (member.name, member.phone, member.email, member.birthday) == ("", None, None, None)
    assert member.user is None
    assert not user.is_active
    assert user.phone is None and user.email is None
    assert ConsentEvent.objects.filter(member=member).exists()  # history stays, pseudonymous
    # The phone is free again for a new enrolment.
    again = member_enroll(phone="13812345678", name="新会员", channel=Member.Channel.ONLINE)
    assert again.pk != member.pk


def test_closing_leaves_no_e_mail_or_phone_in_the_audit_trail_and_drops_mfa():
    from allauth.mfa.models import Authenticator

    from members.services import member_update_profile

    user = UserFactory(email="secret@example.com", phone="+8613812345678", phone_verified=True)
    member = member_signup_complete(user=user)
    member_update_profile(member=member, actor=user, city="上海")
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={})

    member_close(member=member, actor=user)

    labels = set(AuditEntry.objects.values_list("actor_label", flat=True))
    assert labels == {f"member {member.member_no} (closed)"}
    assert not Authenticator.objects.filter(user=user).exists()


def test_a_login_without_e_mail_is_shown_with_a_masked_phone():
    user = UserFactory(email=None, phone="+8613812345678")
    assert str(user) == "138****5678"


def test_a_birthday_too_long_ago_is_too_early_and_one_tomorrow_in_the_future():
    from members.services import birthday_earliest, birthday_problem

    today = datetime.date(2026, 3, 15)
    assert birthday_earliest(today=today) == datetime.date(1906, 3, 15)  # 120 years
    assert birthday_earliest(today=datetime.date(2010, 1, 1)) == datetime.date(1900, 1, 1)
    assert birthday_earliest(today=datetime.date(2020, 2, 29)) == datetime.date(1900, 2, 28)
    assert birthday_problem(birthday=datetime.date(1906, 3, 14), today=today) == (
        "birthday_too_early"
    )
    assert birthday_problem(birthday=datetime.date(1906, 3, 15), today=today) == ""
    assert birthday_problem(birthday=today, today=today) == ""
    assert birthday_problem(birthday=datetime.date(2026, 3, 16), today=today) == (
        "birthday_in_future"
    )
