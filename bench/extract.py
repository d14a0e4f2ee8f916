"""Reading PDFs: pages per second on a generated 500-page document (budget ≥ 100 pages/s), and
what reading it in the background does to live streams (budget: it must not slow them).

The second part runs one Daphne process with 20 streams at 50 tokens/s, twice: alone, and
while the 500-page PDF is uploaded and read beside them. It reports the added latency of the
first and last tokens (arrival at the websocket client minus the stub's send) and the longest
gap between two token frames a client saw.
"""

import asyncio
import json
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.harness import daphne, percentile, run_stream, stub, stub_stats

PAGES = 500
STREAMS, TOKENS, RATE = 20, 150, 50.0
LOREM = (
    "KimiChat reads documents so that Kimi can answer questions about them. Each page of this "
    "benchmark carries a paragraph like this one, repeated to fill the page the way a report "
    "or a manual would, with numbers such as {n} and words in several lines. "
)


def make_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    for n in range(PAGES):
        pdf.add_page()
        pdf.multi_cell(0, 5, (LOREM.format(n=n) * 8).strip())
    pdf.output(str(path))


def pages_per_second(path: Path) -> tuple[float, int]:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    # The settings of the server it is compared with (bench.harness's).
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench")
    django.setup()
    from uploads.extract import extract

    times = []
    for _ in range(3):
        started = time.perf_counter()
        extracted = extract(str(path), "pdf")
        times.append(time.perf_counter() - started)
    return PAGES / statistics.median(times), len(extracted.text)


async def upload_and_wait(server, pdf: bytes) -> float:
    """Upload the PDF as the composer does and wait until the page hears it is read."""
    cookie = server.cookies[0]
    async with aiohttp.ClientSession(headers={"Cookie": cookie}) as session:
        async with session.get(f"http://{server.url}/files/") as page:
            html = await page.text()
            found = re.search(r'"X-CSRFToken": "([^"]+)"', html)
            assert found, "the Files page carries its CSRF token"
            token = found.group(1)
            csrf_cookie = page.cookies["csrftoken"].value
        url = f"ws://{server.url}/ws/files/"
        ws_headers = {"Origin": f"http://{server.url}", "Cookie": cookie}
        async with session.ws_connect(url, headers=ws_headers) as ws:
            form = aiohttp.FormData()
            form.add_field("file", pdf, filename="manual-500-pages.pdf")
            headers = {
                "X-CSRFToken": token,
                "HX-Request": "true",
                "Cookie": f"{cookie}; csrftoken={csrf_cookie}",
                "Origin": f"http://{server.url}",
            }
            started = time.monotonic()
            async with session.post(
                f"http://{server.url}/files/upload/", data=form, headers=headers
            ) as response:
                body = await response.text()
                assert response.status == 200, body
            async for message in ws:
                if "Ready" in message.data or "Could not" in message.data:
                    return time.monotonic() - started
    raise RuntimeError("the upload was never read")


async def streams(server, stub_url: str, label: str, pdf: bytes | None) -> dict:
    start = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [
            asyncio.create_task(run_stream(session, server, i, f"{label}-{i}", start))
            for i in range(STREAMS)
        ]
        await asyncio.sleep(0.5)
        start.set()
        reading = None
        if pdf is not None:
            await asyncio.sleep(0.5)  # the streams are flowing when the upload lands
            reading = asyncio.create_task(upload_and_wait(server, pdf))
        done = await asyncio.gather(*tasks)
        read_in = await reading if reading else None
    chunks = (await stub_stats(stub_url))["chunks"]
    first = [(s.first_token_at - chunks[s.marker][0]) * 1000 for s in done]
    last = [(s.last_token_at - chunks[s.marker][1]) * 1000 for s in done]
    lost = sum(TOKENS - s.text.count(" t") for s in done)
    gaps = [s.max_gap * 1000 for s in done]
    return {"first": first, "last": last, "lost": lost, "gap": gaps, "read_in": read_in}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / "manual-500-pages.pdf"
        make_pdf(pdf)
        rate, chars = pages_per_second(pdf)
        print(f"PDF text: {PAGES} pages ({pdf.stat().st_size / 1e6:.1f} MB, {chars:,} characters)")
        print(f"  {rate:,.0f} pages/s  (budget ≥ 100 pages/s -> {'OK' if rate >= 100 else 'OVER'})")

        with stub(tokens=TOKENS, rate=RATE) as stub_url, daphne(stub_url, users=STREAMS) as server:
            alone = asyncio.run(streams(server, stub_url, "alone", None))
            reading = asyncio.run(streams(server, stub_url, "reading", pdf.read_bytes()))
    print(f"\n{STREAMS} live streams at {RATE:.0f} tokens/s, alone and while the PDF is read:")
    print("                    first p50/p99 ms   last p50/p99 ms   longest gap p99 ms   lost")
    for name, r in (("alone", alone), ("while reading", reading)):
        print(
            f"  {name:<16}  {percentile(r['first'], 50):7.1f} /{percentile(r['first'], 99):6.1f}"
            f"   {percentile(r['last'], 50):7.1f} /{percentile(r['last'], 99):6.1f}"
            f"   {percentile(r['gap'], 99):12.1f}         {r['lost']}"
        )
    print(f"  upload + reading the {PAGES}-page PDF in the server: {reading['read_in']:.2f} s")
    ratio = percentile(reading["last"], 99) / max(percentile(alone["last"], 99), 1.0)
    print(f"  last-token p99 while reading / alone: {ratio:.2f}x")
    print(json.dumps({"pages_per_second": round(rate), "ratio_last_p99": round(ratio, 2)}))


if __name__ == "__main__":
    main()
