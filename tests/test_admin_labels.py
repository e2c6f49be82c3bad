"""The Django admin reads in Chinese on the zh-hans site: every label of our models is
translatable and translated, and the admin's own screen-reader texts are too."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.utils import translation
from django.utils.functional import Promise

from members.services import audit_log
from tests.factories import MemberFactory, UserFactory

OUR_APPS = ("members", "points", "tiers")
# Labels that read the same in both languages.
SAME_IN_BOTH = {"SKU", "App", "API token", "API tokens", "SHA-256", "source_id"}


def _labels() -> list[tuple[str, Promise | str]]:
    found = []
    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        found.append((f"{model._meta.label} (model)", model._meta.verbose_name))
        found.append((f"{model._meta.label} (plural)", model._meta.verbose_name_plural))
        for field in model._meta.get_fields():
            if field.auto_created or not hasattr(field, "verbose_name") or field.name == "id":
                continue
            found.append((f"{model._meta.label}.{field.name}", field.verbose_name))
    return found


def _untranslated(labels: list[tuple[str, Promise | str]]) -> list[str]:
    problems = []
    for where, label in labels:
        if not isinstance(label, Promise):
            problems.append(f"{where}: {label!r} is not marked for translation")
            continue
        with translation.override("en"):
            english = str(label)
        with translation.override("zh-hans"):
            chinese = str(label)
        if chinese == english and english not in SAME_IN_BOTH:
            problems.append(f"{where}: {english!r} has no Chinese translation")
    return problems


def test_every_label_of_our_models_is_translated():
    assert _untranslated(_labels()) == []


def test_the_check_catches_a_label_left_in_english():
    from django.utils.translation import gettext_lazy

    planted = [("x.plain", "member number"), ("x.lazy", gettext_lazy("A label nobody translated"))]
    assert len(_untranslated(planted)) == 2


@pytest.mark.django_db
def test_admin_pages_show_no_english_labels_on_the_chinese_site(client, settings):
    client.force_login(UserFactory(email="root@example.com", is_superuser=True, is_staff=True))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    member = MemberFactory()
    audit_log(actor=None, action="store.create", member=member)
    pages = ["/admin/"]
    checked = 0
    for model in admin.site._registry:
        if model._meta.app_label in OUR_APPS:
            pages.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
    for url in pages:
        html = client.get(url).content.decode()
        for english in ("Model name", "Add link", "Change or view list link", "Phone masked"):
            assert english not in html, (url, english)
        if url == "/admin/":
            continue  # its list also names allauth's models, which allauth leaves in English
        # Column headers of the change lists are the fields' labels.
        table = html.split('id="result_list"', 1)
        if len(table) == 2:
            checked += 1
            headers = re.findall(r'<th scope="col".*?</th>', table[1].split("</thead>", 1)[0], re.S)
            for header in headers:
                text = re.sub(r"<[^>]+>", " ", header).strip()
                assert not re.fullmatch(r"[A-Za-z ]{3,}", text), (url, text)
    assert checked >= 3  # the members, stores and audit log lists have rows
