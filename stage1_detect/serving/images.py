"""A task's image, wherever Label Studio keeps it, as the annotator sees it.

References and how they are read:

- `data:image/...;base64,...` (pasted or inline images): decoded.
- `/data/local-files/?d=REL` (local-files storage): `document_root / REL`, when the backend
  knows the document root (`--document-root`, else `LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT`,
  the variable Label Studio itself reads); otherwise fetched from Label Studio like an upload.
  Links are resolved first: a path that leaves the root is refused.
- `/data/upload/...` and other server paths (uploaded files): fetched from Label Studio, which
  needs its URL and a token: `LABEL_STUDIO_URL` / `LABEL_STUDIO_API_KEY`, else the `hostname`
  and `access_token` Label Studio sends to `/setup`. A personal access token (a JWT) is
  exchanged for an access token first, as label-studio-sdk does.
- `http(s)://...`: fetched; with the token when the URL is on the Label Studio server.

Every failure is an `ImageUnavailable` whose message is the reason reported for that task. The
picture is EXIF-transposed: the boxes are in the displayed image's pixels, as Label Studio
shows it (and as the importer records sizes).
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import httpx
from PIL import Image, ImageOps

from annotate.formats.images import decode_data_url
from annotate.runtime.pillow import open_image

#: Larger downloads are refused (a detector input, not an archive).
MAX_BYTES = 200 * 1024 * 1024
LOCAL_FILES = "/data/local-files/"


class ImageUnavailable(Exception):
    """The task's image could not be read; the message says why."""


@dataclass
class Server:
    """Label Studio's address and key, for images only it can serve."""

    url: str | None = None
    api_key: str | None = None
    _access: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def is_personal(self) -> bool:
        """A personal access token (a JWT: three dot-separated parts), not a legacy token."""
        return bool(self.api_key) and self.api_key.count(".") == 2

    def headers(self, client: httpx.Client, refresh: bool = False) -> dict:
        if not self.api_key:
            return {}
        if not self.is_personal():
            return {"Authorization": f"Token {self.api_key}"}
        with self._lock:  # a personal access token: exchange it once for an access token
            if self._access is None or refresh:
                reply = client.post(f"{self.url}/api/token/refresh",
                                    json={"refresh": self.api_key})
                if reply.status_code != 200:
                    raise ImageUnavailable(f"Label Studio refused the personal access token "
                                           f"({reply.status_code})")
                self._access = reply.json()["access"]
            return {"Authorization": f"Bearer {self._access}"}


@dataclass
class ImageSource:
    """Reads task images (see the module's docstring)."""

    document_root: Path | None = None
    server: Server = field(default_factory=Server)
    timeout: float = 30.0

    @classmethod
    def from_environment(cls, document_root: str | os.PathLike | None = None) -> ImageSource:
        root = document_root or os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT")
        url = (os.environ.get("LABEL_STUDIO_URL") or "").rstrip("/") or None
        return cls(Path(root) if root else None,
                   Server(url, os.environ.get("LABEL_STUDIO_API_KEY") or None))

    def learn(self, hostname: str | None, access_token: str | None) -> None:
        """What `/setup` says about the server, used only where the environment said nothing."""
        if not self.server.url and hostname:
            self.server.url = hostname.rstrip("/")
        if not self.server.api_key and access_token:
            self.server.api_key = access_token

    def read(self, ref: object) -> Image.Image:
        """The image `ref` names, RGB, as displayed; `ImageUnavailable` with the reason."""
        if not isinstance(ref, str) or not ref.strip():
            raise ImageUnavailable(f"the task's image field is {ref!r}, not a reference")
        ref = ref.strip()
        if ref.startswith("data:"):
            try:
                raw = decode_data_url(ref)
            except ValueError as err:
                raise ImageUnavailable(str(err)) from None
        elif ref.startswith(LOCAL_FILES) and self.document_root is not None:
            raw = self._local(ref)
        elif ref.startswith("/"):
            raw = self._from_server(ref)
        elif urlparse(ref).scheme in ("http", "https"):
            raw = self._http(ref, self._on_server(ref))
        else:
            scheme = urlparse(ref).scheme
            raise ImageUnavailable(
                f"cannot read {ref[:120]!r}: " + (f"{scheme}:// URLs are not fetched by the "
                                                  "backend (let Label Studio serve the storage)"
                                                  if scheme else "not a URL Label Studio serves"))
        return _decode(raw, ref)

    def _local(self, ref: str) -> bytes:
        rel = parse_qs(urlparse(ref).query).get("d", [""])[0]
        root = os.path.realpath(self.document_root)
        path = os.path.realpath(os.path.join(root, unquote(rel)))
        if not rel or os.path.commonpath([root, path]) != root:
            raise ImageUnavailable(f"{ref[:120]!r} leaves the document root {root}")
        if not os.path.isfile(path):
            raise ImageUnavailable(f"{ref[:120]!r}: no file {path} under the document root")
        if os.path.getsize(path) > MAX_BYTES:
            raise ImageUnavailable(f"{path} is larger than {MAX_BYTES >> 20} MiB")
        return Path(path).read_bytes()

    def _on_server(self, url: str) -> bool:
        return bool(self.server.url) and url.startswith(self.server.url + "/")

    def _from_server(self, ref: str) -> bytes:
        if not self.server.url:
            kind = "a local-files" if ref.startswith(LOCAL_FILES) else "an uploaded"
            fix = ("start the backend with --document-root (Label Studio's "
                   "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT) or " if kind == "a local-files"
                   else "")
            raise ImageUnavailable(f"{ref[:120]!r} is {kind} file that only Label Studio "
                                   f"serves: {fix}set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY "
                                   "for the backend")
        return self._http(self.server.url + ref, authorised=True)

    def _http(self, url: str, authorised: bool) -> bytes:
        try:
            with httpx.Client(timeout=self.timeout, follow_redirects=True) as client:
                headers = self.server.headers(client) if authorised else {}
                reply = client.get(url, headers=headers)
                if reply.status_code == 401 and authorised and self.server.is_personal():
                    reply = client.get(url, headers=self.server.headers(client, refresh=True))
        except httpx.HTTPError as err:
            raise ImageUnavailable(f"fetching {_shown(url)} failed: {type(err).__name__}: "
                                   f"{err}") from None
        if reply.status_code != 200:
            hint = (" (is LABEL_STUDIO_API_KEY set for the backend?)"
                    if reply.status_code in (401, 403) else "")
            raise ImageUnavailable(f"fetching {_shown(url)} answered {reply.status_code}{hint}")
        if len(reply.content) > MAX_BYTES:
            raise ImageUnavailable(f"{_shown(url)} is larger than {MAX_BYTES >> 20} MiB")
        return reply.content


def _shown(url: str) -> str:
    """A URL for a message: no query string (presigned URLs carry credentials there)."""
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}{parsed.path}"[:160] if parsed.scheme else url[:160]


def _decode(raw: bytes, ref: str) -> Image.Image:
    try:
        with open_image(io.BytesIO(raw)) as image:
            image.load()  # decodes the whole picture: a cut or damaged file raises here
            return ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise ImageUnavailable(f"{_shown(ref) if not ref.startswith('data:') else 'inline image'}"
                               f" is not a readable image ({type(err).__name__}: "
                               f"{str(err)[:120]})") from None
