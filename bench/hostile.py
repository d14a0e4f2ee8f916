"""`python -m bench.hostile`: the hostile-input issue's attacks, each against a real
`kimichat.serve` process (the Kimi stub beside it), with its default limits. For each: the
server's peak memory growth while it lasts, and another user's time to first token (send →
first token at the page) before and during it. Targets: < 200 MB, and within 2x.

Files are read in child processes of their own (capped by FILE_READER_MEMORY_MB each): their
memory is not the server's, and is given back when they end; their peak is shown apart."""

import asyncio
import io
import itertools
import json
import multiprocessing
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.harness import ROOT, TOKEN_TEXT, _wait_for_line, django_env, free_port, median, stub

FILES_ATTACKER, SELECT_ATTACKER, SOCKETS_ATTACKER = range(3)
# Another user, a fresh one before and during each attack: each stays within the default
# limits (20 messages a minute) that the attackers meet.
FIRST_VICTIM = 3
VICTIM_MESSAGES = 10
ANSWER_CHARS = 60_000


@dataclass
class Target:
    url: str
    pid: int
    cookies: list[str]
    conversations: list[int]
    versions: list[int]  # the two versions of the select attacker's long answer
    db: Path


@contextmanager
def target(stub_url: str):
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "db.sqlite3"
        env = django_env(db, stub_url)
        # The limits as a deployment has them by default.
        for name in ("USER_MAX_CONCURRENT", "USER_MESSAGES_PER_MINUTE"):
            env.pop(name)
        env["MEDIA_ROOT"] = str(Path(tmp) / "media")
        seeded = _run(env, "-m", "bench.seed", str(FIRST_VICTIM + 2 * len(ATTACKS) + 1))
        versions = _run(env, "-m", "bench.hostile", "seed")
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "kimichat.serve"],
            cwd=ROOT,
            env={**env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        _wait_for_line(process, "Listening on TCP address")
        try:
            yield Target(
                f"127.0.0.1:{port}",
                process.pid,
                seeded["cookies"],
                seeded["conversations"],
                versions,
                db,
            )
        finally:
            process.terminate()
            process.wait()


def _run(env: dict, *args: str):
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def seed() -> None:
    """In the target's database: 520 files for the `@` attacker, and a long answer in two
    versions for the version-switch attacker."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User

    from conversations.models import Conversation, Message
    from uploads.models import UploadedFile

    users = list(User.objects.order_by("id"))
    UploadedFile.objects.bulk_create(
        UploadedFile(
            owner=users[FILES_ATTACKER],
            name=f"x {n}.txt",
            size=5,
            sha256=f"{n:064x}",
            kind=UploadedFile.Kind.TEXT,
            content_type="text/plain",
            status=UploadedFile.Status.READY,
            text=f"file {n}",
        )
        for n in range(520)
    )
    conversation = Conversation.objects.filter(owner=users[SELECT_ATTACKER]).get()
    question = Message.objects.create(conversation=conversation, role="user", content="Tell me.")
    versions = [
        Message.objects.create(
            conversation=conversation,
            parent=question,
            role="assistant",
            content=f"Version {n}. " + "All work and no play. " * (ANSWER_CHARS // 22),
            model="kimi-k2.6",
            state="done",
        )
        for n in (1, 2)
    ]
    conversation.leaf = versions[-1]
    conversation.save(update_fields=["leaf"])
    print(json.dumps([v.pk for v in versions]))


# What is measured


def _status(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _clear_peak(pid: int) -> None:
    """VmHWM counts from here."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def _children(pid: int) -> list[int]:
    """The server's child processes (a reading is started from a worker thread)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


async def _watch_readers(pid: int, stop: asyncio.Event, peak: list[float]) -> None:
    """The largest a file-reading child of the server grew (sampled)."""
    while not stop.is_set():
        for child in _children(pid):
            try:
                peak[0] = max(peak[0], _status(child, "VmHWM"))
            except OSError:
                pass
        await asyncio.sleep(0.05)


async def victim_ttft(
    session: aiohttp.ClientSession, t: Target, victim: int, count: int = VICTIM_MESSAGES
) -> list[float]:
    """Ms from Send to the first token at a victim's page, `count` messages in a row."""
    url = f"ws://{t.url}/ws/conversations/{t.conversations[victim]}/"
    headers = {"Origin": f"http://{t.url}", "Cookie": t.cookies[victim]}
    found = []
    async with session.ws_connect(url, headers=headers, max_msg_size=0) as ws:
        for _ in range(count):
            sent, first = time.monotonic(), None
            await ws.send_str(json.dumps({"message": "How are you?"}))
            async for message in ws:
                if first is None and TOKEN_TEXT.search(message.data):
                    first = time.monotonic()
                if 'data-state="done"' in message.data or 'data-state="error"' in message.data:
                    break
            if first is not None:
                found.append((first - sent) * 1000)
    return found


# The attacks: each runs until `stop` is set (or it is done) and says what came of it.

Attack = Callable[[aiohttp.ClientSession, Target, asyncio.Event], Coroutine[Any, Any, str]]


async def huge_login_body(session, t: Target, stop: asyncio.Event) -> str:
    statuses = await _huge_bodies(t, "/accounts/login/", 512 * 1024 * 1024, "", stop)
    return f"{len(statuses)} × 512 MB log-ins: {_counted(statuses)}" + REFUSED


async def oversized_upload(session, t: Target, stop: asyncio.Event) -> str:
    cookie = t.cookies[FILES_ATTACKER]
    statuses = await _huge_bodies(t, "/files/upload/", 105 * 1024 * 1024, cookie, stop)
    return f"{len(statuses)} × 105 MB uploads: {_counted(statuses)}" + REFUSED


async def _huge_bodies(t: Target, path: str, length: int, cookie: str, stop) -> list[str]:
    statuses = []
    host, port = t.url.split(":")
    while not stop.is_set():
        reader, writer = await asyncio.open_connection(host, int(port))
        head = f"POST {path} HTTP/1.1\r\nHost: {t.url}\r\nContent-Length: {length}\r\n"
        writer.write((head + f"Cookie: {cookie}\r\n\r\n").encode())
        chunk = b"a" * (1 << 20)
        try:
            for _ in range(length >> 20):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        try:
            line = await reader.readline()
            statuses.append(line.decode().split(" ", 2)[1] if line else "closed")
        except (ConnectionError, OSError):
            statuses.append("reset")
        writer.close()
    return statuses


# The server answers 413 to the head and closes the connection; a client still sending its
# body meets the reset before it reads the answer.
REFUSED = " (413 at the head, connection closed)"


def _counted(values: list[str]) -> str:
    return ", ".join(f"{values.count(v)} {v}" for v in sorted(set(values))) or "none"


async def lying_docx(session, t: Target, stop: asyncio.Event) -> str:
    return await _upload_and_read(session, t, prepared[lying_docx])


async def heavy_documents(session, t: Target, stop: asyncio.Event) -> str:
    return await _upload_and_read(session, t, prepared[heavy_documents])


async def long_spreadsheet(session, t: Target, stop: asyncio.Event) -> str:
    return await _upload_and_read(session, t, prepared[long_spreadsheet])


def _lying_files() -> list[tuple[str, bytes]]:
    return [(f"bomb{n}.docx", _docx_claiming_1kb(n)) for n in range(3)]


def _heavy_files() -> list[tuple[str, bytes]]:
    files = [(f"heavy{n}.docx", _docx(_paragraphs(200, n))) for n in range(3)]
    return files + [(f"strings{n}.xlsx", _xlsx_shared_strings(400, n)) for n in range(3)]


# Files an attack uploads, made before it starts (making them takes the client a while).
PREPARE: dict[Any, Callable[[], list[tuple[str, bytes]]]] = {
    lying_docx: _lying_files,
    heavy_documents: _heavy_files,
    long_spreadsheet: lambda: [("rows.xlsx", xlsx_rows(200_000, 50))],
}
prepared: dict[Any, list[tuple[str, bytes]]] = {}


async def _upload_and_read(session, t: Target, files: list[tuple[str, bytes]]) -> str:
    cookie = t.cookies[FILES_ATTACKER]
    # A light page for the token (the Files page lists all of the attacker's 520 files).
    async with session.get(f"http://{t.url}/teams/", headers={"Cookie": cookie}) as r:
        token = r.cookies["csrftoken"].value
    form = aiohttp.FormData()
    for name, data in files:
        form.add_field("file", data, filename=name, content_type="application/octet-stream")
    headers = {
        "Cookie": f"{cookie}; csrftoken={token}",
        "X-CSRFToken": token,
        "HX-Request": "true",
        "Origin": f"http://{t.url}",
    }
    started = time.monotonic()
    async with session.post(f"http://{t.url}/files/upload/", data=form, headers=headers) as r:
        await r.read()
    names = [name for name, _ in files]
    while True:
        rows = _file_rows(t.db, names)
        if len(rows) == len(names) and all(state != "processing" for state, _ in rows):
            break
        await asyncio.sleep(0.2)
    took = time.monotonic() - started
    return f"{len(names)} files, done in {took:.0f} s: " + _counted(
        [code or state for state, code in rows]
    )


def _file_rows(db: Path, names: list[str]) -> list[tuple[str, str]]:
    with sqlite3.connect(db, timeout=30) as connection:
        marks = ",".join("?" * len(names))
        query = f"SELECT status, error_code FROM uploads_uploadedfile WHERE name IN ({marks})"
        return connection.execute(query, names).fetchall()


async def version_flood(session, t: Target, stop: asyncio.Event) -> str:
    url = f"ws://{t.url}/ws/conversations/{t.conversations[SELECT_ATTACKER]}/"
    headers = {"Origin": f"http://{t.url}", "Cookie": t.cookies[SELECT_ATTACKER]}
    # Sockets that never read what they are sent; each switches versions every 20 ms.
    sockets = [await session.ws_connect(url, headers=headers, max_msg_size=0) for _ in range(8)]
    sent = 0
    while not stop.is_set() and not all(ws.closed for ws in sockets):
        for ws in sockets:
            if ws.closed:
                continue
            try:
                message_id = t.versions[sent % 2]
                await ws.send_str(json.dumps({"action": "select", "message_id": message_id}))
                sent += 1
            except (ConnectionError, RuntimeError):
                pass
        await asyncio.sleep(0.02)
    closed = sum(ws.closed or ws._writer.transport.is_closing() for ws in sockets)
    for ws in sockets:
        await ws.close()
    return f"{sent} switches from 8 sockets that do not read; {closed} closed by the server"


async def at_flood(session, t: Target, stop: asyncio.Event) -> str:
    url = f"ws://{t.url}/ws/conversations/new/"
    headers = {"Origin": f"http://{t.url}", "Cookie": t.cookies[FILES_ATTACKER]}
    counts = {"sent": 0, "answers": 0, "refused": 0}

    async def one() -> None:
        async with session.ws_connect(url, headers=headers, max_msg_size=0) as ws:

            async def read() -> None:
                async for message in ws:
                    counts["answers"] += 'data-state="done"' in message.data
                    counts["refused"] += "composer-error" in message.data

            reading = asyncio.create_task(read())
            while not stop.is_set():
                await ws.send_str(json.dumps({"message": "@x " * 33333}))
                counts["sent"] += 1
                await asyncio.sleep(0.01)
            reading.cancel()

    await asyncio.gather(*(one() for _ in range(4)))
    return (
        f"{counts['sent']} messages of 33,333 @ (520 files): {counts['answers']} answered, "
        f"{counts['refused']} refused"
    )


async def socket_storm(session, t: Target, stop: asyncio.Event) -> str:
    url = f"ws://{t.url}/ws/conversations/{t.conversations[SOCKETS_ATTACKER]}/"
    headers = {"Origin": f"http://{t.url}", "Cookie": t.cookies[SOCKETS_ATTACKER]}

    async def one():
        try:
            ws = await session.ws_connect(url, headers=headers, max_msg_size=0)
        except aiohttp.ClientError:
            return None
        return ws

    sockets = await asyncio.gather(*(one() for _ in range(2000)))
    open_ones = [ws for ws in sockets if ws is not None]
    # A refused socket is accepted at the handshake, then closed with 4429.
    for ws in open_ones:
        try:
            await asyncio.wait_for(ws.receive(), 0.01)
        except TimeoutError:
            pass
    kept = [ws for ws in open_ones if not ws.closed]
    await stop.wait()
    for ws in open_ones:
        await ws.close()
    return f"2000 sockets of one user: {len(kept)} kept open, {2000 - len(kept)} refused"


ATTACKS: list[tuple[str, Attack]] = [
    ("anonymous 512 MB log-in body", huge_login_body),
    ("105 MB upload (over the limit)", oversized_upload),
    ("3 DOCX claiming 1 KB, inflating to 1 GB", lying_docx),
    ("6 heavy files (200 MB XML DOCX, 400 MB XLSX strings)", heavy_documents),
    ("XLSX of 200,000 rows × 50 cells (100 MB of XML)", long_spreadsheet),
    ("8 unread sockets switching versions every 20 ms", version_flood),
    ('"@x " × 33,333 with 520 files, 4 sockets', at_flood),
    ("2,000 sockets of one user", socket_storm),
]


# Hostile files, made here


def _paragraphs(megabytes: int, salt: int) -> Iterator[bytes]:
    body = b"<w:p><w:r><w:t>All work and no play makes Jack a dull boy.</w:t></w:r></w:p>"
    yield (
        b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
        b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>%d</w:t></w:r></w:p>' % salt
    )
    yield from _repeated(body, megabytes)
    yield b"</w:body></w:document>"


def _repeated(piece: bytes, megabytes: int) -> Iterator[bytes]:
    block = piece * ((1 << 20) // len(piece))
    for _ in range(megabytes):
        yield block


def _zip(parts: dict[str, bytes | Iterator[bytes]]) -> bytes:
    """A zip of `parts`; a part given as pieces is written as it comes (never whole)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            if isinstance(data, bytes):
                archive.writestr(name, data)
                continue
            with archive.open(name, "w", force_zip64=True) as part:
                for piece in data:
                    part.write(piece)
    return buffer.getvalue()


CONTENT_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="xml" ContentType="application/xml"/>'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/>%s</Types>'
)


def _docx(document: bytes | Iterator[bytes]) -> bytes:
    return _zip(
        {
            "[Content_Types].xml": CONTENT_TYPES
            % b'<Override PartName="/word/document.xml" ContentType="application/vnd.'
            b'openxmlformats-officedocument.wordprocessingml.document.main+xml"/>',
            "_rels/.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.'
            b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            b'officeDocument" Target="word/document.xml"/></Relationships>',
            "word/document.xml": document,
        }
    )


def _docx_claiming_1kb(salt: int) -> bytes:
    """A DOCX whose 1 GB document part says, in the zip's headers, that it is 1 KB."""
    data = bytearray(_docx(_paragraphs(1024, salt)))
    name = b"word/document.xml"
    local = data.rindex(b"PK\x03\x04", 0, data.index(name))
    data[local + 22 : local + 26] = struct.pack("<I", 1024)
    central = data.rindex(b"PK\x01\x02", 0, data.rindex(name))
    data[central + 24 : central + 28] = struct.pack("<I", 1024)
    return bytes(data)


def _xlsx_shared_strings(megabytes: int, salt: int) -> bytes:
    """A one-cell sheet whose shared strings are `megabytes` of text."""
    one = b"<si><t>All work and no play makes Jack a dull boy.</t></si>"
    sheet = b'<sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData>'
    strings = itertools.chain(
        [
            b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main"><si><t>%d</t></si>' % salt
        ],
        _repeated(one, megabytes),
        [b"</sst>"],
    )
    return _xlsx(iter([sheet]), strings, salt)


def xlsx_rows(rows: int, columns: int, salt: int = 0) -> bytes:
    """A sheet of `rows` rows of `columns` numbers (200,000 rows of 50: 600 KB zipped, 100 MB
    of XML), its size stated in its dimension as a spreadsheet program writes it."""
    last = ""
    n = columns
    while n:
        n, digit = divmod(n - 1, 26)
        last = chr(65 + digit) + last
    row = b"<row>" + b"<c><v>%d</v></c>" % salt * columns + b"</row>"
    block = 1000
    sheet = itertools.chain(
        [b'<dimension ref="A1:%s%d"/><sheetData>' % (last.encode(), rows)],
        (row * min(block, rows - start) for start in range(0, rows, block)),
        [b"</sheetData>"],
    )
    strings = [
        b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main"><si><t>%d</t></si></sst>' % salt
    ]
    return _xlsx(sheet, iter(strings), salt)


def _xlsx(sheet: Iterator[bytes], strings: Iterator[bytes], salt: int) -> bytes:
    main = b"application/vnd.openxmlformats-officedocument.spreadsheetml"
    sheet_xml = itertools.chain(
        [
            b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main">'
        ],
        sheet,
        [b"</worksheet>"],
    )
    parts: dict[str, bytes | Iterator[bytes]] = {
        "[Content_Types].xml": CONTENT_TYPES
        % (
            b'<Override PartName="/xl/workbook.xml" ContentType="%s.sheet.main+xml"/>'
            b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="%s.worksheet'
            b'+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="%s.'
            b'sharedStrings+xml"/>' % (main, main, main)
        ),
        "_rels/.rels": b'<?xml version="1.0"?><Relationships xmlns="http://schemas.'
        b'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": b'<?xml version="1.0"?><workbook xmlns="http://schemas.'
        b'openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.'
        b'openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
        b'name="S%d" sheetId="1" r:id="rId1"/></sheets></workbook>' % salt,
        "xl/_rels/workbook.xml.rels": b'<?xml version="1.0"?><Relationships xmlns="http:'
        b'//schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1"'
        b' Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
        b'worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http:'
        b'//schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" '
        b'Target="sharedStrings.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet_xml,
        "xl/sharedStrings.xml": strings,
    }
    return _zip(parts)


# The run


async def run(t: Target) -> list[tuple[str, float, float, float, float, str]]:
    rows = []
    spawn = multiprocessing.get_context("spawn")
    async with aiohttp.ClientSession() as session:
        await victim_ttft(session, t, FIRST_VICTIM + 2 * len(ATTACKS), 2)  # warm
        for n, (name, _attack) in enumerate(ATTACKS):
            # The attacker is a process of its own: its work does not hold up the victim's
            # client (they still share the machine's two cores with the server).
            go, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
            attacker = spawn.Process(target=_attacker, args=(n, t, go, stop, results))
            attacker.start()
            await asyncio.to_thread(results.get)  # its files made, ready to go
            before = median(await victim_ttft(session, t, FIRST_VICTIM + 2 * n))
            _clear_peak(t.pid)
            start_rss = _status(t.pid, "VmRSS")
            done, readers_peak = asyncio.Event(), [0.0]
            watching = asyncio.create_task(_watch_readers(t.pid, done, readers_peak))
            go.set()
            await asyncio.sleep(1)  # the attack under way
            during = median(await victim_ttft(session, t, FIRST_VICTIM + 2 * n + 1))
            stop.set()
            outcome = await asyncio.to_thread(results.get)
            attacker.join()
            done.set()
            await watching
            growth = _status(t.pid, "VmHWM") - start_rss
            rows.append((name, growth, readers_peak[0], before, during, outcome))
            print(
                f"  {name}: +{growth:.0f} MB (readers {readers_peak[0]:.0f} MB); "
                f"first token {before:.0f} → {during:.0f} ms; {outcome}",
                flush=True,
            )
    return rows


def _attacker(n: int, t: Target, go: Any, stop: Any, results: Any) -> None:
    """The `n`th attack, in a process of its own: ready (its files made), then from `go`
    until `stop` (or until it is done); what came of it goes to `results`."""
    attack = ATTACKS[n][1]
    if attack in PREPARE:
        prepared[attack] = PREPARE[attack]()
    results.put("ready")
    go.wait()

    async def main() -> str:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        waiter = loop.run_in_executor(None, stop.wait)
        waiter.add_done_callback(lambda _: stopping.set())
        async with aiohttp.ClientSession() as session:
            return await attack(session, t, stopping)

    results.put(asyncio.run(main()))


def main() -> None:
    if sys.argv[1:] == ["seed"]:
        seed()
        return
    print("Hostile input against one kimichat.serve process (targets: < 200 MB, ≤ 2x):")
    with stub(tokens=20, rate=200) as stub_url, target(stub_url) as t:
        rows = asyncio.run(run(t))
    print()
    print("| attack | server peak growth | readers' peak | another user's first token | outcome |")
    print("|---|---|---|---|---|")
    for name, growth, readers, before, during, outcome in rows:
        verdict = "OK" if growth < 200 and during <= 2 * max(before, 1) else "OVER"
        print(
            f"| {name} | +{growth:.0f} MB | {readers:.0f} MB | {before:.0f} → {during:.0f} ms "
            f"({during / before:.1f}x) {verdict} | {outcome} |"
        )


if __name__ == "__main__":
    main()
