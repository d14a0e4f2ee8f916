"""Uploading through the real views, and reading what the composer and the `@` list got back."""

import html
import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient

from uploads import background
from uploads.models import UploadedFile

REPORT = "收入增长了百分之十二。Revenue grew by twelve percent."


async def logged_in(user) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def upload(client: AsyncClient, name: str, data: bytes, *more: tuple[str, bytes]):
    """Files attached in the composer (an htmx request)."""
    files = [SimpleUploadedFile(name, data), *(SimpleUploadedFile(n, d) for n, d in more)]
    return await client.post("/files/upload/", {"file": files}, headers={"hx-request": "true"})


def chips(response) -> list[tuple[int, str]]:
    """(id, name) of each file whose chip the composer got back."""
    found = re.findall(r'data-file-id="(\d+)" data-reference="@([^"]*)"', response.content.decode())
    return [(int(pk), html.unescape(name)) for pk, name in found]


def refusals(response) -> list[str]:
    """Why each refused file was refused, as its chip says."""
    found = re.findall(r'class="file-chip failed" title="([^"]*)"', response.content.decode())
    return [html.unescape(text) for text in found]


async def uploaded(user, name: str, data: bytes) -> UploadedFile:
    """A file uploaded through the view, once its text has been read."""
    response = await upload(await logged_in(user), name, data)
    assert response.status_code == 200, response.content
    await background.idle()
    [(pk, _name)] = chips(response)
    return await UploadedFile.objects.aget(pk=pk)


def suggested(response) -> list[tuple[str, str, str]]:
    """The `@` suggestions as the listbox shows them: (reference, name, detail)."""
    found = re.findall(
        r'<li id="[\w-]+" role="option" aria-selected="false" data-reference="([^"]*)">'
        r'<span class="name">([^<]*)</span><span class="detail">([^<]*)</span></li>',
        response.content.decode(),
    )
    return [tuple(html.unescape(part) for part in option) for option in found]
