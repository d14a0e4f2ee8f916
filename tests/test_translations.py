"""The Chinese catalogue says what the English says. It was once filled by fuzzy matching,
which gave "Password confirmation" the text of "Shared conversations" and "Change e-mail"
that of "Change role": these checks keep that from coming back, and the compiled catalogue
from falling behind the one people edit."""

import ast
import gettext
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

# Unrelated English messages that share one Chinese text on purpose, each with its reason.
# (A message and its own plural, capitalised or punctuated form are related: see `word`.)
SHARED = {
    frozenset({"status", "state"}): "two admin columns for the same idea: 状态",
}

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w+\}")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def entries() -> list[Entry]:
    """The catalogue's entries (no header), read the way msgfmt reads them."""
    found: list[Entry] = []
    current = Entry()
    key: tuple[str, int] = ("", 0)
    for line in [*PO.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            if current.msgid or current.msgstr:
                found.append(current)
            current = Entry()
        elif line.startswith("#,"):
            current.flags += [flag.strip() for flag in line[2:].split(",")]
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            append(current, key, ast.literal_eval(line))
        else:
            keyword, value = line.split(" ", 1)
            index = int(keyword[7:-1]) if keyword.startswith("msgstr[") else 0
            key = ("msgstr" if keyword.startswith("msgstr") else keyword, index)
            if key[0] == "msgstr":
                current.msgstr[index] = ""
            elif keyword == "msgctxt":
                current.msgctxt = ""
            append(current, key, ast.literal_eval(value))
    return [entry for entry in found if entry.msgid]


def append(entry: Entry, key: tuple[str, int], text: str) -> None:
    if key[0] == "msgstr":
        entry.msgstr[key[1]] += text
    elif key[0] == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    else:
        setattr(entry, key[0], getattr(entry, key[0]) + text)


def word(msgid: str) -> str:
    """A message as a word: "Messages", "message" and "Message:" are one."""
    text = msgid.casefold().rstrip(".:…。 ")
    return text.removesuffix("s")


def test_no_entry_is_fuzzy():
    fuzzy = [entry.msgid for entry in entries() if "fuzzy" in entry.flags]
    assert fuzzy == []


def test_every_message_has_a_chinese_text():
    empty = [entry.msgid for entry in entries() if not all(entry.msgstr.values())]
    assert empty == []
    assert len(entries()) > 500


def test_chinese_texts_keep_the_placeholders():
    wrong = []
    for entry in entries():
        # Chinese has one form (nplurals=1): it says what the English plural says.
        source = entry.msgid_plural or entry.msgid
        for text in entry.msgstr.values():
            if sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(text)):
                wrong.append((entry.msgid, text))
    assert wrong == []


def test_unrelated_messages_do_not_share_a_chinese_text():
    by_text: dict[str, set[str]] = defaultdict(set)
    for entry in entries():
        by_text[entry.msgstr[0]].add(entry.msgid)
    shared = {
        text: msgids
        for text, msgids in by_text.items()
        if len({word(msgid) for msgid in msgids}) > 1 and frozenset(msgids) not in SHARED
    }
    assert shared == {}


def test_the_allowed_sharing_is_still_needed():
    texts = {entry.msgid: entry.msgstr[0] for entry in entries()}
    for msgids in SHARED:
        assert len({texts[msgid] for msgid in msgids}) == 1, msgids


def test_the_compiled_catalogue_is_up_to_date(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(fresh), str(PO)], check=True)
    with fresh.open("rb") as new, PO.with_suffix(".mo").open("rb") as shipped:
        expected = gettext.GNUTranslations(new)._catalog  # type: ignore[attr-defined]
        assert gettext.GNUTranslations(shipped)._catalog == expected  # type: ignore[attr-defined]


def test_the_chinese_sign_up_and_account_pages_say_what_the_english_says(client, alice, settings):
    # The texts the issue found wrong, where a person reads them.
    settings.SIGNUP = "approval"
    chinese = {"Accept-Language": "zh-CN"}
    signup = client.get("/accounts/signup/", headers=chinese).content.decode()
    assert "确认密码" in signup and "共享的对话" not in signup
    assert "新账户需经审核员批准后才能使用。" in signup
    client.force_login(alice)
    account = client.get("/accounts/", headers=chinese).content.decode()
    for text in ["修改密码", "更改电子邮箱", "保存语言", "登录会话", "登录时间", "删除我的账户"]:
        assert text in account, text
    assert "更改角色" not in account and "保存并发送" not in account
    change = client.get("/accounts/password/change/", headers=chinese).content.decode()
    assert "返回你的账户" in change
