"""The Vietnamese catalogue: every string translated, none fuzzy, and the compiled .mo
(committed: the server never compiles) says what the .po says."""

from __future__ import annotations

import ast
import gettext
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "locale" / "vi" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _entries() -> list[dict[str, object]]:
    """(msgctxt, msgid, msgstr or plural forms, flags) of each entry but the header."""
    entries = []
    for block in PO.read_text().split("\n\n"):
        fields: dict[str, object] = {"flags": "", "msgstr": []}
        key = None
        for line in block.splitlines():
            if line.startswith("#,"):
                fields["flags"] = line
            elif line.startswith("#"):
                continue
            elif match := re.match(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[\d\])?) (".*")$', line):
                key = match.group(1)
                value = ast.literal_eval(match.group(2))
                if key.startswith("msgstr"):
                    fields["msgstr"].append(value)  # type: ignore[union-attr]
                else:
                    fields[key] = value
            elif line.startswith('"') and key:
                value = ast.literal_eval(line)
                if key.startswith("msgstr"):
                    fields["msgstr"][-1] += value  # type: ignore[index]
                else:
                    fields[key] += value  # type: ignore[operator]
        if fields.get("msgid"):
            entries.append(fields)
    return entries


def test_every_vietnamese_string_is_translated_and_none_is_fuzzy() -> None:
    entries = _entries()
    assert len(entries) > 600
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"])]  # type: ignore[union-attr]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in str(e["flags"])]
    assert untranslated == [] and fuzzy == []


def test_the_compiled_catalogue_is_the_po_file_compiled() -> None:
    with MO.open("rb") as handle:
        catalogue = gettext.GNUTranslations(handle)
    for entry in _entries():
        if "msgid_plural" in entry:
            continue
        msgid = str(entry["msgid"])
        if "msgctxt" in entry:
            msgid = f"{entry['msgctxt']}\x04{msgid}"
        assert catalogue.gettext(msgid) == entry["msgstr"][0], msgid  # type: ignore[index]
