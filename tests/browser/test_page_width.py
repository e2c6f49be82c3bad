"""At 390 px (a phone) no portal page scrolls sideways, in either language.

Every page of tests/pages.py is opened in Chromium with a member's session; the page fits
when `document.documentElement.scrollWidth <= 390` and no box inside it (a wide table in
an overflow wrapper) scrolls sideways either. The audit log, the widest back-office
table, is held to the same width.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from members.models import User
from tests.pages import page_world, portal_pages

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH = 390

# The elements sticking out to the right, to say what to fix when a page is too wide.
WIDE_ELEMENTS = """(width) => Array.from(document.querySelectorAll('body *'))
  .filter((el) => el.getBoundingClientRect().right > width + 0.5)
  .slice(0, 5)
  .map((el) => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
    + ' ' + Math.round(el.getBoundingClientRect().right) + 'px')"""


def _sign_in(page, user: User, language: str) -> None:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.clear_cookies()
    page.context.add_cookies(
        [
            {"name": settings.SESSION_COOKIE_NAME, "value": session, "url": page.base_url},
            {"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": page.base_url},
        ]
    )


# Boxes that scroll sideways inside the page (a table in an overflow-x wrapper): the page
# fits, but the reader still has to scroll. Visually hidden texts (1 px, clipped) are not.
SCROLLING_BOXES = """() => Array.from(document.querySelectorAll('body *'))
  .filter((el) => !el.closest('.visually-hidden') && el.clientWidth > 1
    && el.scrollWidth > el.clientWidth + 1
    && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
  .map((el) => el.tagName.toLowerCase() + '.' + el.className + ' '
    + el.scrollWidth + '/' + el.clientWidth + 'px')"""


def _too_wide(page, urls: dict[str, str], language: str) -> dict[str, list]:
    problems = {}
    for name, path in urls.items():
        response = page.goto(page.base_url + path)
        assert response is not None and response.status == 200, (path, response)
        assert page.locator("html").get_attribute("lang") == language
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > WIDTH:
            problems[name] = [width, *page.evaluate(WIDE_ELEMENTS, WIDTH)]
        elif scrolling := page.evaluate(SCROLLING_BOXES):
            problems[name] = scrolling
    return problems


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_no_portal_page_scrolls_sideways_on_a_phone(page, language):
    world = page_world()
    assert page.viewport_size["width"] == WIDTH
    _sign_in(page, world.member.user, language)
    assert _too_wide(page, portal_pages(world), language) == {}


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_audit_log_fits_a_phone(page, language):
    world = page_world()
    _sign_in(page, User.objects.get(email=world.admin_email), language)
    urls = {
        "staff:audit-log": "/staff/audit/",
        "staff:jobs": "/staff/jobs/",
        "staff:member-detail": f"/staff/members/{world.member.member_no}/",
    }
    assert _too_wide(page, urls, language) == {}
