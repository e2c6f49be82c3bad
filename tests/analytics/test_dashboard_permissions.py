"""Who sees the dashboards: not store staff; managers their own stores only; marketers and
administrators every store."""

from __future__ import annotations

import pytest

from tests.analytics.conftest import login

URLS = [
    "/staff/analytics/",
    "/staff/analytics/panel/members/",
    "/staff/analytics/panel/members/csv/",
    "/staff/analytics/members/?kind=high-risk",
]


@pytest.mark.parametrize("url", URLS)
def test_store_staff_see_no_dashboard(client, figures, url):
    login(client, "store_staff", stores=[figures[0]])
    assert client.get(url).status_code == 403


def test_store_staff_have_no_analytics_link(client, figures):
    login(client, "store_staff", stores=[figures[0]])
    assert "/staff/analytics/" not in client.get("/staff/").content.decode()


@pytest.mark.parametrize("role", ["marketer", "administrator"])
def test_marketers_and_administrators_see_every_store(client, figures, role):
    a, b = figures
    login(client, role)
    page = client.get("/staff/analytics/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'href="/staff/analytics/"' in html  # the nav link
    assert "All stores" in html or "全部门店" in html
    assert a.name in html and b.name in html
    everyone = client.get("/staff/analytics/panel/members/").content.decode()
    assert "45100" in everyone  # all stores, March
    store_b = client.get(f"/staff/analytics/panel/members/?store={b.pk}").content.decode()
    assert "41000" in store_b


def test_a_manager_sees_their_store_only_and_by_default(client, figures):
    a, b = figures
    login(client, "store_manager", stores=[a])
    html = client.get("/staff/analytics/").content.decode()
    assert a.name in html
    assert b.name not in html
    assert "All stores" not in html and "全部门店" not in html
    panel = client.get("/staff/analytics/panel/members/").content.decode()
    assert "4100" in panel and "45100" not in panel and "41000" not in panel


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("store", ["other", "all"])
def test_a_manager_asking_for_another_store_or_all_stores_is_refused(client, figures, url, store):
    a, b = figures
    login(client, "store_manager", stores=[a])
    key = b.pk if store == "other" else 0
    separator = "&" if "?" in url else "?"
    response = client.get(f"{url}{separator}store={key}")
    assert response.status_code == 403
    assert b"41000" not in response.content and b"45100" not in response.content


def test_a_manager_with_no_store_sees_nothing(client, figures):
    login(client, "store_manager")
    assert client.get("/staff/analytics/panel/members/").status_code == 403
