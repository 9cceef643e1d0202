"""Every visible string in both languages, with Vietnamese diacritics, and the formatters."""
from __future__ import annotations

import re
import string
import unicodedata

import pytest

from dashboard.i18n import LANGS, STRINGS, fmt_age, fmt_clock, fmt_num, kind_label, t
from processing.kinds import KINDS


def test_every_key_has_every_language_with_the_same_fields() -> None:
    fmt = string.Formatter()
    for key, texts in STRINGS.items():
        assert set(texts) == set(LANGS), key
        fields = [{f for _, f, _, _ in fmt.parse(texts[lang]) if f} for lang in LANGS]
        assert fields[0] == fields[1], key
        assert all(texts[lang].strip() for lang in LANGS), key


def test_vietnamese_is_precomposed_and_has_its_diacritics() -> None:
    for key, texts in STRINGS.items():
        assert unicodedata.normalize("NFC", texts["vi"]) == texts["vi"], key
    assert t("title") == "Trung tâm Điều hành Thông minh"
    assert t("status.offline") == "Mất kết nối"
    assert t("role.duty") == "Trực ban"
    assert t("severity.critical") == "Nghiêm trọng"
    # most Vietnamese strings carry at least one letter outside ASCII; English ones none
    vi_marked = sum(bool(re.search(r"[^\x00-\x7f]", texts["vi"])) for texts in STRINGS.values())
    assert vi_marked > 0.8 * len(STRINGS)
    for key, texts in STRINGS.items():
        if not key.startswith("lang.") and key != "city":
            assert re.fullmatch(r"[\x00-\x7f×±σ·…–]*", texts["en"]), key


def test_lookup_and_fallback() -> None:
    assert t("feed.more", "en", n=3) == "+3 more alerts"
    assert t("feed.more", "vi", n=3) == "+3 cảnh báo khác"
    assert t("feed.ack", "fr") == t("feed.ack", "vi")          # unknown language: Vietnamese
    with pytest.raises(KeyError):
        t("no.such.key")
    assert kind_label("pm25", "vi") == KINDS["pm25"].label_vi
    assert kind_label("water_level", "en") == "River water level"


@pytest.mark.parametrize("x, lang, digits, text", [
    (1234.56, "vi", 1, "1.234,6"), (1234.56, "en", 1, "1,234.6"), (2.5, "vi", 2, "2,50"),
    (float("nan"), "vi", 1, "–"), (None, "en", 1, "–"), (-3.0, "vi", 0, "-3"),
])
def test_numbers(x, lang, digits, text) -> None:
    assert fmt_num(x, lang, digits) == text


def test_clock_is_local_time_utc_plus_7() -> None:
    assert fmt_clock(1_772_420_400.0, offset_s=7 * 3600) == "10:00:00"                  # 03:00 UTC
    assert fmt_clock(1_772_420_400.0, offset_s=7 * 3600, seconds=False, date=True) == "10:00 02/03/2026"
    assert fmt_clock(1_772_420_400.0, offset_s=-3 * 3600, seconds=False, date=True) == "00:00 02/03/2026"
    assert fmt_clock(float("nan"), offset_s=7 * 3600) == "–"


@pytest.mark.parametrize("s, vi, en", [
    (2, "vừa xong", "just now"), (42, "42 giây", "42 s"), (600, "10 phút", "10 min"),
    (7300, "2 giờ", "2 h"), (200000, "2 ngày", "2 d"),
])
def test_ages(s, vi, en) -> None:
    assert fmt_age(s, "vi") == vi and fmt_age(s, "en") == en
