"""The back-office landing page and the till's one search box."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from members.numbers import damm_check_digit, member_qr_payload
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

HOME_URL = "/staff/"
SEARCH_URL = "/staff/members/"
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def member(store):
    return MemberFactory(
        name="张伟", phone="+8613812341234", member_no="812345678901", home_store=store
    )


def page(response) -> str:
    return response.content.decode()


def detail_url(member) -> str:
    return reverse("staff:member-detail", args=[member.member_no])


def mistyped(member_no: str) -> str:
    """The same number with its last digit changed: what a slip of the finger produces."""
    return member_no[:-1] + str((int(member_no[-1]) + 1) % 10)


# --- the landing page --------------------------------------------------------------------


def test_the_back_office_sends_anonymous_visitors_to_the_login_page(client):
    for url in (HOME_URL, SEARCH_URL + "?q=张"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login") + "?next=")


def test_a_shopper_without_a_role_is_refused_the_back_office(client):
    client.force_login(UserFactory())
    assert client.get(HOME_URL).status_code == 403
    assert client.get(SEARCH_URL, {"q": "张"}).status_code == 403


def test_the_landing_page_puts_the_search_box_first_with_a_label_and_autofocus(staff_client):
    html = page(staff_client.get(HOME_URL))
    search = re.search(r"<input[^>]*name=\"q\"[^>]*>", html).group(0)
    assert "autofocus" in search
    assert 'id="member-search-q"' in search
    assert '<label for="member-search-q">' in html
    assert f'action="{SEARCH_URL}"' in html


def test_the_landing_page_links_only_to_what_the_role_can_do(client, role_user):
    client.force_login(role_user("store_staff"))
    html = page(client.get(HOME_URL))
    assert f'href="{reverse("staff:member-enrol")}"' in html
    assert f'href="{reverse("staff:audit-log")}"' not in html

    client.force_login(role_user("auditor"))
    html = page(client.get(HOME_URL))
    assert f'href="{reverse("staff:audit-log")}"' in html
    assert f'href="{reverse("staff:member-enrol")}"' not in html


# --- the search page ---------------------------------------------------------------------


def test_the_search_page_searches_live_with_htmx_and_works_as_a_plain_form(staff_client):
    html = page(staff_client.get(SEARCH_URL))
    form = re.search(r"<form[^>]*role=\"search\"[^>]*>", html).group(0)
    assert 'method="get"' in form
    assert f'action="{SEARCH_URL}"' in form
    search = re.search(r"<input[^>]*name=\"q\"[^>]*>", html).group(0)
    assert f'hx-get="{SEARCH_URL}"' in search
    assert 'hx-trigger="input changed delay:250ms, search"' in search
    assert 'hx-push-url="true"' in search
    assert 'hx-target="#search-results"' in search
    assert "autofocus" in search


@pytest.mark.parametrize("typed", ["13812341234", "+86 138 1234 1234", "138-1234-1234"])
def test_a_phone_in_any_usual_form_goes_straight_to_the_member(staff_client, member, typed):
    response = staff_client.get(SEARCH_URL, {"q": typed})
    assert response.status_code == 302
    assert response["Location"] == detail_url(member)


@pytest.mark.parametrize("typed", ["812345678901", "8123 4567 8901"])
def test_a_member_number_goes_straight_to_the_member(staff_client, member, typed):
    response = staff_client.get(SEARCH_URL, {"q": typed})
    assert response["Location"] == detail_url(member)


def test_a_scanned_card_goes_straight_to_the_member(staff_client, member):
    response = staff_client.get(SEARCH_URL, {"q": member_qr_payload(member.member_no)})
    assert response["Location"] == detail_url(member)


def test_a_single_match_during_live_search_redirects_the_browser_through_htmx(staff_client, member):
    response = staff_client.get(SEARCH_URL, {"q": "13812341234"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == detail_url(member)


def test_a_mistyped_member_number_says_the_check_digit_is_wrong_and_matches_nobody(
    staff_client, member
):
    # Another member holds a number one digit away; a mistyped number must not find them.
    body = "81111111111"
    neighbour = MemberFactory(name="李娜", member_no=body + damm_check_digit(body))
    typo = mistyped(neighbour.member_no)
    response = staff_client.get(SEARCH_URL, {"q": typo})
    html = page(response)
    assert response.status_code == 200
    assert "check digit is wrong — re-type or scan" in html
    assert neighbour.name not in html
    assert detail_url(neighbour) not in html


def test_a_name_prefix_lists_members_with_masked_phones_and_links_to_each(staff_client, store):
    zhang = MemberFactory(name="张伟", phone="+8613812341234", home_store=store)
    zhang_li = MemberFactory(name="张丽", phone="+8613912345678")
    MemberFactory(name="王芳")
    html = page(staff_client.get(SEARCH_URL, {"q": "张"}))
    assert "2 members found" in html
    for found in (zhang, zhang_li):
        assert found.name in html
        assert found.member_no in html
        assert f'href="{detail_url(found)}"' in html
    assert "138****1234" in html
    assert "139****5678" in html
    assert "13812341234" not in html and "+8613812341234" not in html
    assert store.name in html
    assert "Active" in html
    assert "王芳" not in html


def test_a_single_name_match_is_listed_rather_than_opened(staff_client, member):
    response = staff_client.get(SEARCH_URL, {"q": "张"})
    assert response.status_code == 200
    assert f'href="{detail_url(member)}"' in page(response)


def test_live_results_are_only_the_results_fragment(staff_client, member):
    MemberFactory(name="张丽")
    response = staff_client.get(SEARCH_URL, {"q": "张"}, headers=HTMX)
    html = page(response)
    assert "<html" not in html
    # Swapped into the page's #search-results live region, so it must not bring another.
    assert html.strip().startswith('<div class="search-results-body">')
    assert 'id="search-results"' not in html
    assert member.name in html
    assert "HX-Request" in response["Vary"]


def test_an_unknown_phone_offers_to_enrol_that_phone(staff_client):
    html = page(staff_client.get(SEARCH_URL, {"q": "13900001111"}))
    assert "No member found." in html
    assert f'href="{reverse("staff:member-enrol")}?phone=13900001111"' in html
    assert "Enrol this phone" in html


def test_a_role_that_cannot_enrol_is_not_offered_enrolment(client, role_user):
    client.force_login(role_user("marketer"))
    html = page(client.get(SEARCH_URL, {"q": "13900001111"}))
    assert "No member found." in html
    assert "Enrol this phone" not in html


def test_half_a_phone_number_asks_for_the_rest_instead_of_saying_nobody(staff_client, member):
    html = page(staff_client.get(SEARCH_URL, {"q": "1381234"}))
    assert "Not a complete mobile number" in html
    assert "No member found." not in html


def test_many_name_matches_show_the_true_count_and_page_through_them(staff_client):
    for _ in range(24):
        MemberFactory(name="王小明")
    html = page(staff_client.get(SEARCH_URL, {"q": "王"}))
    assert html.count('class="member-result"') == 20
    assert "24 members found — showing 1–20" in html
    assert "Page 1 of 2" in html
    assert 'href="/staff/members/?q=%E7%8E%8B&amp;page=2"' in html

    second = page(staff_client.get(SEARCH_URL, {"q": "王", "page": "2"}))
    assert second.count('class="member-result"') == 4
    assert "24 members found — showing 21–24" in second
    assert "Page 2 of 2" in second
    assert "page=1" in second
    # The two pages list different members.
    ids = set(re.findall(r'class="member-result-no">(\d+)<', html))
    assert ids.isdisjoint(re.findall(r'class="member-result-no">(\d+)<', second))

    # A page past the end shows the last one; a bad page number the first.
    assert "Page 2 of 2" in page(staff_client.get(SEARCH_URL, {"q": "王", "page": "9"}))
    assert "Page 1 of 2" in page(staff_client.get(SEARCH_URL, {"q": "王", "page": "x"}))


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("²", "Page 1 of 2"),  # str.isdigit says yes, int says no
        ("٢", "Page 1 of 2"),  # not an ASCII digit: not a page number
        ("99999999999999999999999", "Page 2 of 2"),  # past the end: the last page
        ("999999999", "Page 2 of 2"),
        ("-1", "Page 1 of 2"),
    ],
)
def test_a_mangled_page_number_shows_a_page_instead_of_crashing(staff_client, typed, shown):
    for _ in range(24):
        MemberFactory(name="王小明")
    response = staff_client.get(SEARCH_URL, {"q": "王", "page": typed})
    assert response.status_code == 200
    assert shown in page(response)


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("8²²²²²²²²²²²", "Not a complete mobile number"),
        ("8١١١١١١١١١١١", "Not a complete mobile number"),
        ("HYL:M:8²²²²²²²²²²²", "check digit is wrong"),
    ],
)
def test_a_number_of_unicode_digits_is_not_a_member_number(staff_client, member, typed, shown):
    response = staff_client.get(SEARCH_URL, {"q": typed})
    assert response.status_code == 200
    assert shown in page(response)


def test_the_result_list_takes_the_same_few_queries_for_two_members_or_twenty(
    staff_client, django_assert_max_num_queries, django_assert_num_queries
):
    stores = [StoreFactory() for _ in range(3)]
    MemberFactory(name="陈一", home_store=stores[0])
    MemberFactory(name="陈二", home_store=stores[1])
    staff_client.get(SEARCH_URL, {"q": "陈"})  # the configuration each process keeps, read once
    # Session, user, the user's and the role's permissions, then one query for the members.
    with django_assert_max_num_queries(5) as few:
        staff_client.get(SEARCH_URL, {"q": "陈"})
    for index in range(18):
        MemberFactory(name=f"陈{index}", home_store=stores[index % 3])
    with django_assert_num_queries(len(few.captured_queries)):
        html = page(staff_client.get(SEARCH_URL, {"q": "陈"}))
    assert html.count('class="member-result"') == 20


def test_the_search_pages_have_no_inline_styles_or_scripts(staff_client, member):
    for url in (HOME_URL, SEARCH_URL + "?q=张"):
        html = page(staff_client.get(url))
        assert " style=" not in html, url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
