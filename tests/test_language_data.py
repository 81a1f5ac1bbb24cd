"""Languages from config.yml and the word lists of data/: loaded, checked, used.

The language marker words (data/language_markers.yml) and the app's command words
(data/app_commands.yml) are read once and checked; a bad file fails with a message that
names the file and what to fix, never with a silently different detector or command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import (
    COMMANDS_FILE,
    app_command,
    command_words,
    language_buttons,
    load_command_words,
)
from bot.language import MARKERS_FILE, SHARED, detect, load_markers, markers
from pmi.knowledge import ContentError, Replies
from pmi.settings import Fallbacks, SettingsError, load_settings

MARKERS = """\
version: 1
pair: [id, ms]
prefer: id
languages:
  id: [{weight: 1.0, words: gak udah}]
  en: [{weight: 1.0, words: the my}, {weight: 0.4, words: pls}]
  ms: [{weight: 1.5, words: nak}]
shared: [{weight: 1.0, words: saya gaji}]
"""


def _write(tmp_path: Path, text: str, name: str = "words.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_marker_file_loads_with_every_word_listed_once() -> None:
    known = load_markers(MARKERS_FILE)  # raises on a word listed twice
    assert known.languages == ("id", "en", "ms")
    assert known.pair == ("id", "ms") and known.prefer == "id"
    sizes = {name: len(known.table(name)) for name in (*known.languages, SHARED)}
    assert all(size > 50 for size in sizes.values()), sizes
    assert known.words["nak"] == ("ms", 1.5) and known.words["pls"] == ("en", 0.4)
    assert markers() is markers()  # read once


def test_a_small_marker_file_drives_detection(tmp_path: Path) -> None:
    known = load_markers(_write(tmp_path, MARKERS))
    assert known.table("en") == {"the": 1.0, "my": 1.0, "pls": 0.4}
    assert known.table(SHARED) == {"saya": 1.0, "gaji": 1.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("words: the my", "words: the gak"), "'gak' is listed twice (id and en)"),
        (("version: 1", "version: 2"), "version: 1"),
        (("weight: 1.5", "weight: -1"), "positive weight"),
        (("words: nak", "words: Nak"), "lower-case letters"),
        (("prefer: id", "prefer: en"), "'prefer' one of them"),
        (("shared: [{weight: 1.0, words: saya gaji}]", "shared: []"), "shared"),
    ],
)
def test_a_bad_marker_file_is_refused_with_a_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _write(tmp_path, MARKERS.replace(*change))
    with pytest.raises(ContentError, match=r"words\.yml") as failure:
        load_markers(path)
    assert message in str(failure.value)


def test_detection_uses_the_marker_words() -> None:
    assert detect("sy udh 3 bulan gk digaji majikan")[0] == "id"
    assert detect("saya nak tanya pasal gaji")[0] == "ms"
    assert detect("my employer keeps my passport")[0] == "en"


COMMANDS = """\
version: 1
commands: {start: [/start], language: [/lang], delete: [/hapus], my_data: [/dataku]}
phrases: {delete: [Hapus  Data Saya], my_data: [data saya]}
channel_names: {telegram: Telegram}
"""


def test_the_command_file_loads() -> None:
    words = load_command_words(COMMANDS_FILE)
    assert {"/start"} == words.commands["start"]
    assert "hapus data saya" in words.phrases["delete"]
    assert words.channel_names["whatsapp"] == "WhatsApp"
    assert command_words() is command_words()


def test_command_phrases_are_compared_normalised(tmp_path: Path) -> None:
    words = load_command_words(_write(tmp_path, COMMANDS))
    assert words.phrases["delete"] == frozenset({"hapus data saya"})
    replies = Replies(
        {k: {"id": k} for k in ("delete_confirm", "delete_yes", "delete_no", "start")}
    )
    reply = app_command("hapus data   saya!", "id", replies, ("id",), words=words)
    assert reply is not None and reply.confirm == "delete"
    assert app_command("/delete", "id", replies, ("id",), words=words) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("language: [/lang], ", ""), "expected the lists start, language, delete, my_data"),
        (("[/dataku]", "[dataku]"), "starting with /"),
        (("my_data: [data saya]", "my_data: [yes, no]"), "quote yes/no/on/off"),
        (("{telegram: Telegram}", "[Telegram]"), "channel_names"),
    ],
)
def test_a_bad_command_file_is_refused_with_a_reason(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    with pytest.raises(ContentError, match=r"words\.yml") as failure:
        load_command_words(_write(tmp_path, COMMANDS.replace(*change)))
    assert message in str(failure.value)


def test_the_languages_are_config_yml_s() -> None:
    languages = load_settings().language
    assert languages.supported == ["id", "en", "ms"] and languages.default == "id"
    assert languages.names["ms"] == "Bahasa Melayu"
    assert languages.fallbacks.of("ms") == ("ms", "id", "id")
    assert languages.fallbacks.of("fr") == ("fr", "id")
    titles = [b["title"] for b in language_buttons(languages)]
    assert titles == ["Bahasa Indonesia", "English", "Bahasa Melayu"]


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        ("[{code: en, name: English}]", "the default language 'id' is not in"),
        ("[{code: id, name: Indonesia}, {code: id, name: Again}]", "listed twice"),
        ("[{code: id, name: Indonesia, fallbacks: [fr]}]", "fallbacks ['fr']"),
        ("[{code: id}]", "name"),
        ("[]", "languages"),
    ],
)
def test_bad_languages_in_config_fail_at_start_up(
    tmp_path: Path, languages: str, message: str
) -> None:
    config = _write(tmp_path, f"language:\n  default: id\n  languages: {languages}\n", "c.yml")
    with pytest.raises(SettingsError) as failure:
        load_settings(config, env={})
    assert message in str(failure.value)


def test_a_config_without_languages_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="language"):
        load_settings(_write(tmp_path, "app: {port: 8080}\n", "c.yml"), env={})


def test_a_missing_text_falls_back_in_the_configured_order() -> None:
    replies = Replies(
        {"hi": {"en": "hello", "ms": "helo"}}, Fallbacks({"ms": ("ms",), "id": ("id", "en")}, "ms")
    )
    assert replies.get("hi", "id") == "hello"
    assert replies.get("hi", "fr") == "helo"
