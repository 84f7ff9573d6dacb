"""Rewriting a page's loads to the vendored assets: the pure part of offline Data Docs (`offline`).

What counts as a load: `<link href>`, `src`/`srcset`/`poster`/`data`/`background`
attributes of the elements that fetch them, and `url()`/`@import` in `<style>` blocks
and `style` attributes. Hyperlinks (`<a href>`) are left as they are. A load of another
host that MANIFEST.json does not know raises `OfflineError` (strict, the default), or is
dropped and reported (strict=False), so no page silently calls out.
"""

from __future__ import annotations

import functools
import hashlib
import html as htmllib
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

PACKAGE_ASSETS = Path(__file__).resolve().with_name("docs_assets")

# Attributes through which an element makes the browser fetch something.
_LOAD_ATTRS: dict[str, tuple[str, ...]] = {
    "link": ("href",),
    "script": ("src",),
    "img": ("src", "srcset"),
    "source": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "video": ("src", "poster"),
    "audio": ("src",),
    "track": ("src",),
    "input": ("src",),
    "image": ("href", "xlink:href"),
    "use": ("href", "xlink:href"),
    "body": ("background",),
    "table": ("background",),
    "td": ("background",),
    "th": ("background",),
}
_SRCSET = {"srcset"}
_DROP_ON_REWRITE = ("integrity", "crossorigin")

_CSS_URL = re.compile(
    r"""(?P<fn>url\(\s*)(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^)"'\s]*))(?P<end>\s*\))"""
    r"""|(?P<imp>@import\s+)(?:"(?P<idq>[^"]*)"|'(?P<isq>[^']*)')""",
    re.I,
)
# GX's references to its site-local static folder: static/..., ./static/..., ../../static/...
_GX_STATIC = re.compile(r"^(?:\./)?(?:\.\./)*static/(?P<rest>[^?#]+)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_NOT_A_REQUEST = ("data:", "blob:", "about:", "javascript:", "#")


class OfflineError(ValueError):
    """A page loads something from another host that the vendored assets do not cover."""


@dataclass(frozen=True)
class Manifest:
    """What MANIFEST.json says: CDN URL -> file under the assets folder, and every file's hash."""

    urls: dict[str, str]
    gx_static: str
    files: dict[str, tuple[str, int]]  # relative path -> (sha256, size)
    digest: str  # sha256 of MANIFEST.json itself

    def local_for(self, url: str) -> str | None:
        """The assets-relative file for an absolute URL, or None. A query string
        (GX adds `?d=<time>&dataContextId=<id>` to its logo) does not matter."""
        if url.startswith("//"):
            url = "https:" + url
        if url.startswith("http://"):
            url = "https://" + url[len("http://") :]
        return self.urls.get(url) or self.urls.get(re.split(r"[?#]", url, maxsplit=1)[0])


@functools.lru_cache(maxsize=8)
def load_manifest(assets_dir: Path = PACKAGE_ASSETS) -> Manifest:
    raw = (assets_dir / "MANIFEST.json").read_bytes()
    data = json.loads(raw)
    return Manifest(
        urls={u: e["file"] for u, e in data["urls"].items()},
        gx_static=data["gx_static"],
        files={p: (e["sha256"], e["size"]) for p, e in data["files"].items()},
        digest=hashlib.sha256(raw).hexdigest(),
    )


# ---------------------------------------------------------------- the pure rewrite


@dataclass
class Rewriter:
    assets_href: str
    manifest: Manifest
    rewritten: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    def url(self, url: str) -> str | None:
        """The URL to load instead: a local one, the same one (nothing to do),
        or None (an unknown load of another host: drop it)."""
        u = url.strip()
        if not u or u.lower().startswith(_NOT_A_REQUEST):
            return url
        if _SCHEME.match(u) or u.startswith("//"):
            local = self.manifest.local_for(u)
            if local is None:
                self.unknown.append(u)
                return None
            new = f"{self.assets_href}/{local}"
        else:
            m = _GX_STATIC.match(u)
            if m is None:
                return url  # a page-relative or host-relative reference: stays on the host
            new = f"{self.assets_href}/{self.manifest.gx_static}/{m.group('rest')}"
        self.rewritten.append((u, new))
        return new

    def css(self, css: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group("imp") is not None:
                quote = '"' if m.group("idq") is not None else "'"
                old = m.group("idq") if m.group("idq") is not None else m.group("isq")
                new = self.url(old)
                return f"{m.group('imp')}{quote}{new if new is not None else 'data:text/css,'}{quote}"
            if m.group("dq") is not None:
                quote, old = '"', m.group("dq")
            elif m.group("sq") is not None:
                quote, old = "'", m.group("sq")
            else:
                quote, old = "", m.group("bare")
            new = self.url(old)
            if new is None:
                new, quote = "data:,", '"'
            return f"{m.group('fn')}{quote}{new}{quote}{m.group('end')}"

        return _CSS_URL.sub(sub, css)

    def srcset(self, value: str) -> str | None:
        out = []
        for candidate in value.split(","):
            parts = candidate.strip().split(None, 1)
            if not parts:
                continue
            new = self.url(parts[0])
            if new is not None:
                out.append(" ".join([new, *parts[1:]]))
        return ", ".join(out) if out else None


class _Scanner(HTMLParser):
    """Collects, with their offsets in the source, the start tags and the text of
    <style> elements. Nothing is re-serialised except what is changed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[tuple[int, str, str, list[tuple[str, str | None]]]] = []
        self.styles: list[tuple[int, str]] = []
        self._line_starts = [0]
        self._in_style = False

    def scan(self, source: str) -> None:
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.feed(source)
        self.close()

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        self.tags.append((self._offset(), raw, tag, attrs))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text() or ""
        self.tags.append((self._offset(), raw, tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append((self._offset(), data))


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    parts = [tag]
    for name, value in attrs:
        parts.append(name if value is None else f'{name}="{htmllib.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + (" />" if self_closing else ">")


def rewrite_loads(source: str, rw: Rewriter) -> str:
    scanner = _Scanner()
    scanner.scan(source)
    edits: list[tuple[int, int, str]] = []

    for offset, raw, tag, attrs in scanner.tags:
        if source[offset : offset + len(raw)] != raw:  # never edit what we cannot locate exactly
            raise OfflineError(f"could not locate <{tag}> at offset {offset}")
        load_attrs = _LOAD_ATTRS.get(tag, ())
        new_attrs: list[tuple[str, str | None]] = []
        changed = moved = False
        for name, value in attrs:
            new: str | None = value
            if value is not None and name in load_attrs:
                new = rw.srcset(value) if name in _SRCSET else rw.url(value)
                if new != value:
                    moved = True
            elif value is not None and name == "style":
                new = rw.css(value)
            if new != value:
                changed = True
            if new is not None:
                new_attrs.append((name, new))
        if moved:
            new_attrs = [(n, v) for n, v in new_attrs if n not in _DROP_ON_REWRITE]
        if changed:
            edits.append((offset, offset + len(raw), _start_tag(tag, new_attrs, raw.rstrip().endswith("/>"))))

    for offset, data in scanner.styles:
        if source[offset : offset + len(data)] != data:
            raise OfflineError(f"could not locate <style> text at offset {offset}")
        new_css = rw.css(data)
        if new_css != data:
            edits.append((offset, offset + len(data), new_css))

    out = source
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    return out


def rewrite_html(
    html: str,
    assets_href: str,
    *,
    manifest: Manifest | None = None,
    strict: bool = True,
) -> str:
    """Point every resource the page loads at the vendored assets.

    `assets_href` is the relative URL from the page's folder to the assets folder:
    "../_assets" for `<docs_dir>/<run>/index.html`, "../../../../../../_assets" for a
    validation page of a suite named "a.b" (GX makes one folder per dot). CDN URLs
    become `<assets_href>/<file from MANIFEST.json>`, GX's `static/...` references become
    `<assets_href>/great_expectations@<version>/static/...`; `integrity` and `crossorigin`
    go from the tags whose URL changed (a `crossorigin` load fails from file://).
    An already rewritten page comes back unchanged.
    """
    if assets_href.startswith("/") or _SCHEME.match(assets_href):
        raise ValueError(f"assets_href must be relative, got {assets_href!r}")
    rw = Rewriter(assets_href.rstrip("/"), manifest or load_manifest())
    out = rewrite_loads(html, rw)
    if rw.unknown and strict:
        raise OfflineError("loads of another host that the vendored assets do not cover: " + ", ".join(rw.unknown))
    return out


def rewrite_css(css: str, assets_href: str, *, manifest: Manifest | None = None, strict: bool = True) -> str:
    """The same rewrite for a stylesheet's text (url() and @import)."""
    rw = Rewriter(assets_href.rstrip("/"), manifest or load_manifest())
    out = rw.css(css)
    if rw.unknown and strict:
        raise OfflineError("loads of another host that the vendored assets do not cover: " + ", ".join(rw.unknown))
    return out




def scheme_of(href: str) -> bool:
    """Whether `href` starts with a URL scheme (`https:`, `file:`, ...)."""
    return bool(_SCHEME.match(href))
