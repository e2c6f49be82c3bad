"""factory_boy factories for the domain models."""

from __future__ import annotations

import factory
from django.utils import timezone

from members.models import Member, Store, User
from members.numbers import member_no_generate
from members.services import referral_code_generate


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"ST{n:03d}")
    name = factory.Sequence(lambda n: f"门店{n}")
    city = "上海"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name", locale="zh_CN")
    password = factory.PostGenerationMethodCall("set_password", "demo-pass-123")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    member_no = factory.LazyFunction(member_no_generate)
    referral_code = factory.LazyFunction(referral_code_generate)
    phone = factory.Sequence(lambda n: f"+86139{n:08d}")
    name = factory.Faker("name", locale="zh_CN")
    enrolment_channel = Member.Channel.STORE
    enrolled_at = factory.LazyFunction(timezone.now)
    privacy_notice_version = "2026-01"
    privacy_accepted_at = factory.LazyFunction(timezone.now)
