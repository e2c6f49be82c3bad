"""Every portal and back-office page reads wholly in the language chosen.

On an English page no Chinese is left outside what people entered (names, stores, cities);
on a Chinese page no English UI word is left. "English UI words" are the words of the
English texts in our translation catalogue (msgids), less those the Chinese texts also use
(CSV, API, Excel …): a word the UI says in English and never in Chinese is a leftover.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from django.urls import get_resolver

from tests.pages import LITERALS, NOT_PAGES, page_world, portal_pages, staff_pages, visible_text

pytestmark = pytest.mark.django_db

CATALOGUE = Path(__file__).resolve().parents[1] / "locale/zh_Hans/LC_MESSAGES/django.po"
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"[A-Za-z][A-Za-z’']+")
# Shown in their own language on purpose: the product's name and the language switcher.
SHOWN_AS_IS_ZH = {"会员 Loyalty", "简体中文"}
SHOWN_AS_IS_EN = {"Loyalty", "English"}


@lru_cache(maxsize=1)
def english_ui_words() -> frozenset[str]:
    """Words of three or more letters the English UI uses and the Chinese UI never does."""
    text = CATALOGUE.read_text(encoding="utf-8")
    english, chinese = set(), set()
    for msgid, msgstr in re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n)+)', text, flags=re.M):
        ids = "".join(re.findall(r'"(.*)"', msgid))
        strs = "".join(re.findall(r'"(.*)"', msgstr))
        if not ids:
            continue  # the header
        ids = re.sub(r"%\(\w+\)[sd]|\{\{.*?\}\}|<[^>]+>", " ", ids)
        english.update(word.lower() for word in WORD.findall(ids) if len(word) >= 3)
        chinese.update(word.lower() for word in WORD.findall(strs))
    return frozenset(english - chinese - {word.lower() for word in SHOWN_AS_IS_EN})


def leftovers(html: str, *, language: str, entered: list[str]) -> list[str]:
    """Lines of the page that are in the other language."""
    text = visible_text(html)
    for allowed in sorted([*entered, *SHOWN_AS_IS_ZH], key=len, reverse=True):
        text = text.replace(allowed, " ")
    found = []
    for line in text.split("\n"):
        if language == "en":
            if HAN.search(line):
                found.append(line)
        elif any(word.lower() in english_ui_words() for word in WORD.findall(line)):
            found.append(line)
    return found


@pytest.fixture
def world(db):
    return page_world()


def _open(client, world, url: str, language: str, *, staff: bool) -> str:
    from django.conf import settings

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    user = world.member.user if not staff else None
    if staff:
        from members.models import User

        user = User.objects.get(email=world.admin_email)
    client.force_login(user)
    response = client.get(url, follow=True)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_portal_page_is_in_one_language(client, world, language):
    problems = {}
    for name, url in portal_pages(world).items():
        html = _open(client, world, url, language, staff=False)
        assert f'<html lang="{language}"' in html, url
        found = leftovers(html, language=language, entered=world.entered)
        if found:
            problems[name] = found
    assert problems == {}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_staff_page_is_in_one_language(client, world, language):
    problems = {}
    for name, url in staff_pages(world).items():
        html = _open(client, world, url, language, staff=True)
        assert f'<html lang="{language}"' in html, url
        entered = [*world.entered, *LITERALS.get(name, [])]
        found = leftovers(html, language=language, entered=entered)
        if found:
            problems[name] = found
    assert problems == {}


def test_the_check_finds_a_planted_untranslated_text(client, world):
    """Not a check that passes on anything: a real page with one text left in the other
    language fails, and each page checked has plenty of text."""
    zh = _open(client, world, "/points/", "zh-hans", staff=False)
    assert leftovers(zh, language="zh-hans", entered=world.entered) == []
    planted = zh.replace("</main>", "<p>Points adjustment</p></main>", 1)
    assert leftovers(planted, language="zh-hans", entered=world.entered) == ["Points adjustment"]
    en = _open(client, world, "/points/", "en", staff=False)
    assert leftovers(en, language="en", entered=world.entered) == []
    planted = en.replace("</main>", '<button aria-label="积分调整">OK</button></main>', 1)
    assert leftovers(planted, language="en", entered=world.entered) == ["积分调整"]
    assert len(visible_text(zh)) > 200 and len(visible_text(en)) > 200
    assert len(english_ui_words()) > 500  # the vocabulary really is the catalogue's


def test_the_page_lists_cover_every_page():
    """A page added to the URLs is added to tests/pages.py too, so both checks see it."""
    names = set()
    for namespace in ("portal", "staff"):
        resolver = get_resolver().namespace_dict[namespace][1]
        names |= {f"{namespace}:{name}" for name in resolver.reverse_dict if isinstance(name, str)}

    class Placeholders:  # the URLs' values do not matter here, only their names
        member = type("Member", (), {"member_no": "0"})()
        coupon_code = donation_id = import_id = job_run_id = other_member_no = segment_id = "0"
        notice_id = unsubscribe_token = campaign_id = draft_campaign_id = "0"

    covered = set(portal_pages(Placeholders)) | set(staff_pages(Placeholders)) | NOT_PAGES
    assert names - covered == set()
