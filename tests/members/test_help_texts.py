"""Every help text a form field names in aria-describedby is on the page with that id, so a
screen reader reads a field's hint with the field."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.conftest import make_role_user

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url_name",
    [
        ("staff:import-upload", "members"),
        ("staff:import-upload", "purchases"),
        ("account_signup", None),
    ],
)
def test_every_described_input_has_its_help_text(client, store, url_name):
    name, kind = url_name
    if name.startswith("staff:"):
        client.force_login(make_role_user("administrator"))
    page = client.get(reverse(name, args=[kind] if kind else []))
    assert page.status_code == 200
    html = page.content.decode()
    described = re.findall(r'aria-describedby="([^"]+)"', html)
    assert described, "no input names a help text here"
    for ids in described:
        for element_id in ids.split():
            assert f'id="{element_id}"' in html, element_id
