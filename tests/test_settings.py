"""Site-wide settings as a visitor meets them: language, time zone, content security policy."""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.utils import timezone

pytestmark = pytest.mark.django_db

PAGE = "/accounts/login/"


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_simplified_chinese_is_the_default_language(client):
    response = client.get(PAGE)

    assert settings.LANGUAGE_CODE == "zh-hans"
    assert response["Content-Language"] == "zh-hans"
    html = response.content.decode()
    assert '<html lang="zh-hans">' in html
    assert "登录" in html


def test_business_time_is_shanghai_time():
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ
    noon_utc = datetime.datetime(2026, 1, 15, 4, 0, tzinfo=datetime.UTC)
    assert timezone.localtime(noon_utc).strftime("%Y-%m-%d %H:%M %z") == "2026-01-15 12:00 +0800"


def test_pages_send_a_strict_content_security_policy(client):
    response = client.get(PAGE)

    directives = csp_directives(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    header = response["Content-Security-Policy"]
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header


def test_pages_have_no_inline_scripts_or_styles(client):
    html = client.get(PAGE).content.decode()

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts, "the page loads htmx and app.js"
    assert all(" src=" in tag for tag in scripts), scripts
    assert " style=" not in html
    assert "<style" not in html


def test_language_switcher_changes_the_pages_to_english(client):
    page = client.get(PAGE).content.decode()
    assert 'action="/i18n/setlang/"' in page
    assert 'name="language"' in page

    response = client.post("/i18n/setlang/", {"language": "en", "next": PAGE})

    assert response.status_code == 302
    assert response["Location"] == PAGE
    english = client.get(PAGE)
    assert english["Content-Language"] == "en"
    html = english.content.decode()
    assert '<html lang="en">' in html
    assert "Sign In" in html
    assert "Password" in html
    assert "登录" not in html


def test_language_switcher_switches_back_to_chinese(client):
    client.post("/i18n/setlang/", {"language": "en", "next": PAGE})

    client.post("/i18n/setlang/", {"language": "zh-hans", "next": PAGE})

    assert "登录" in client.get(PAGE).content.decode()


def test_an_unknown_language_is_ignored(client):
    client.post("/i18n/setlang/", {"language": "xx", "next": PAGE})

    assert client.get(PAGE)["Content-Language"] == "zh-hans"
