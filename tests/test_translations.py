"""zh-hans is complete, and the compiled catalogue matches the .po file it came from."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import settings
from django.utils import translation

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def po_entries() -> list[dict]:
    """A small reader for the entries of a .po file (msgctxt, msgid, msgstr, flags)."""
    entries, entry, field = [], {}, None
    for line in [*PO.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if "msgid" in entry:
                entries.append(entry)
            entry, field = {}, None
        elif line.startswith("#,"):
            entry["flags"] = line[2:]
        elif line.startswith("#"):
            continue
        elif match := re.match(r"(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (\".*\")$", line):
            field = match.group(1)
            entry[field] = ast.literal_eval(match.group(2))
        elif line.startswith('"') and field:
            entry[field] += ast.literal_eval(line)
    return [e for e in entries if e["msgid"]]


def test_every_message_has_a_chinese_translation_and_none_is_fuzzy():
    entries = po_entries()
    assert len(entries) > 500
    missing = [e["msgid"] for e in entries if not (e.get("msgstr") or e.get("msgstr[0]"))]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e.get("flags", "")]
    assert missing == []
    assert fuzzy == []


def test_the_compiled_catalogue_matches_the_po_file():
    """A stale django.mo (forgot `make messages`) would show old or English text."""
    with translation.override("zh-hans"):
        stale = [
            e["msgid"]
            for e in po_entries()
            if "msgid_plural" not in e
            and (
                translation.pgettext(e["msgctxt"], e["msgid"])
                if "msgctxt" in e
                else translation.gettext(e["msgid"])
            )
            != e["msgstr"]
        ]
    assert stale == []


def test_the_default_language_is_chinese_and_english_is_offered(client):
    response = client.get("/accounts/login/")
    assert response.headers["Content-Language"] == "zh-hans"
    assert "登录" in response.content.decode()
    response = client.get("/accounts/login/", headers={"accept-language": "en"})
    assert "Log in" in response.content.decode()
