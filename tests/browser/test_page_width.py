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
        "staff:job-run-detail": f"/staff/jobs/{world.job_run_id}/",
    }
    assert _too_wide(page, urls, language) == {}


# Cells of the job runs' table whose text runs past their own box or past the box that holds
# the table (its overflow wrapper): what the reader would have to scroll to, or cannot read.
PAST_THE_TABLE = """() => {
  const wrap = document.querySelector('table.job-runs').parentElement;
  const right = wrap.getBoundingClientRect().right;
  const cells = Array.from(document.querySelectorAll('table.job-runs td, table.job-runs td *'));
  return cells
    .filter((el) => (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      || el.getBoundingClientRect().right > right + 0.5)
    .map((el) => el.tagName.toLowerCase() + ' ' + el.textContent.slice(0, 20) + ' '
      + el.scrollWidth + '/' + el.clientWidth + 'px')
    .concat(wrap.scrollWidth > wrap.clientWidth + 1 ? ['wrapper scrolls'] : []);
}"""


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_job_runs_details_wrap_inside_the_table(page, language):
    from django.utils import timezone

    from core.models import JobRun

    world = page_world()
    # A figure with no place to break (a long code a job wrote) must still wrap.
    JobRun.objects.create(
        job="reconcile",
        business_date=timezone.localdate(),
        status=JobRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        details={"accounts_checked": 2, "large_postings_threshold": 10**40, "note": "x" * 150},
    )
    _sign_in(page, User.objects.get(email=world.admin_email), language)
    for width in (800, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(page.base_url + "/staff/jobs/")
        assert page.evaluate(PAST_THE_TABLE) == [], width
