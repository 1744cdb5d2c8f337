"""The image bytes of a ``POST /predict`` body, read with a size limit while streaming.

Two encodings: ``multipart/form-data`` with a ``file`` part, or ``application/json`` with
``{"image_base64": "..."}`` (a ``data:image/...;base64,`` prefix is allowed). The image may be
at most ``max_bytes``; the body gets 64 KiB of envelope on top (and 4/3 of the image for base64)
and is cut off with 413 as soon as it exceeds that, so nothing unbounded is buffered. The whole
body must arrive within ``timeout`` seconds (408 otherwise), so a client trickling bytes cannot
hold a slot; a client that disconnects mid-upload raises ``ClientDisconnect`` (logged as 499).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

ENVELOPE_BYTES = 64 * 1024
FIELD = "file"
JSON_FIELD = "image_base64"
DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
USAGE = (
    f"send multipart/form-data with a '{FIELD}' part, or application/json with "
    f'{{"{JSON_FIELD}": "<base64>"}}'
)


#: the rest of an abandoned body is not read: the connection closes after the answer
CLOSE = {"Connection": "close"}


def _too_large(max_bytes: int) -> HTTPException:
    return HTTPException(
        413,
        f"upload exceeds the {max_bytes / 2**20:g} MiB limit; send a smaller image",
        headers=CLOSE,
    )


async def _limited(
    chunks: AsyncIterator[bytes], limit: int, max_bytes: int
) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise _too_large(max_bytes)
        yield chunk


async def read_image_bytes(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The uploaded image's bytes; HTTPException (400/408/413/415/422) naming any problem."""
    try:
        async with asyncio.timeout(timeout):
            return await _read(request, max_bytes)
    except TimeoutError:
        raise HTTPException(
            408,
            f"the request body did not arrive within {timeout:g} s; send it in one go",
            headers=CLOSE,
        ) from None


async def _read(request: Request, max_bytes: int) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length", "")
    if declared == "0":
        raise HTTPException(422, f"the request body is empty; {USAGE}")
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if media_type != "multipart/form-data" and not is_json:
        shown = f"Content-Type '{media_type}'" if media_type else "a request without Content-Type"
        raise HTTPException(415, f"{shown} is not supported; {USAGE}")
    limit = (-(-max_bytes // 3) * 4 if is_json else max_bytes) + ENVELOPE_BYTES
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(max_bytes)
    body = _limited(request.stream(), limit, max_bytes)
    data = await (_from_json(body) if is_json else _from_multipart(request, body))
    if not data:
        raise HTTPException(422, f"the uploaded image is empty (0 bytes); {USAGE}")
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


async def _from_multipart(request: Request, body: AsyncGenerator[bytes, None]) -> bytes:
    parser = MultiPartParser(request.headers, body, max_files=1, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"malformed multipart body ({exc.message}); {USAGE}") from None
    try:
        upload = form.get(FIELD)
        if upload is None:
            raise HTTPException(422, f"multipart body has no '{FIELD}' part; {USAGE}")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, f"'{FIELD}' must be a file part, not a text field; {USAGE}")
        return await upload.read()
    finally:
        await form.close()


async def _from_json(body: AsyncGenerator[bytes, None]) -> bytes:
    raw = b"".join([chunk async for chunk in body])
    if not raw.strip():
        raise HTTPException(422, f"the request body is empty; {USAGE}")
    try:
        payload = json.loads(raw)
    except RecursionError:
        raise HTTPException(400, f"JSON body is nested too deeply; {USAGE}") from None
    except ValueError as exc:  # malformed JSON, bad UTF-8, an integer of too many digits
        raise HTTPException(400, f"body is not valid JSON ({exc}); {USAGE}") from None
    if not isinstance(payload, dict) or JSON_FIELD not in payload:
        raise HTTPException(422, f"JSON body has no '{JSON_FIELD}' field; {USAGE}")
    text = payload[JSON_FIELD]
    if not isinstance(text, str):
        raise HTTPException(422, f"'{JSON_FIELD}' must be a base64 string")
    text = DATA_URL.sub("", "".join(text.split()), count=1)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HTTPException(
            422, f"'{JSON_FIELD}' is not valid base64 ({exc}); encode the image file's bytes"
        ) from None
