"""Great Expectations Data Docs that load nothing from any other host.

GX pages load bootstrap, jquery, font-awesome, vega... from CDNs, a logo from S3, and
favicon/images from the `static/` folder GX copies (4 MB) into every site. This module
points every one of those loads at one shared copy of the vendored files in
`docs_assets/` (see its MANIFEST.json and scripts/vendor_docs_assets.py), by a
relative URL, so the pages work from `file://` and over HTTP under any URL prefix.

Layout it is written for::

    <docs_dir>/_assets/...                      sync_assets(docs_dir / "_assets")
    <docs_dir>/<run_slug>/index.html            one GX site per run: make_offline(site_root)
    <docs_dir>/<run_slug>/validations/.../<page>.html
    <docs_dir>/<run_slug>/expectations/<suite>.html

`make_offline(docs_dir / run_slug)` syncs the assets (once per process), rewrites every
page in place and deletes the site's own `static/` folder. Run it after every GX build
of the site (GX re-renders the index and re-copies `static/` each time); it is
idempotent. `rewrite_html` is the pure function underneath.

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
import os
import posixpath
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

__all__ = [
    "ASSETS_DIRNAME",
    "PACKAGE_ASSETS",
    "Manifest",
    "OfflineError",
    "OfflineReport",
    "assets_href_for",
    "load_manifest",
    "make_offline",
    "rewrite_css",
    "rewrite_html",
    "sync_assets",
]

ASSETS_DIRNAME = "_assets"
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
class _Rewriter:
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


def _rewrite(source: str, rw: _Rewriter) -> str:
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
    rw = _Rewriter(assets_href.rstrip("/"), manifest or load_manifest())
    out = _rewrite(html, rw)
    if rw.unknown and strict:
        raise OfflineError("loads of another host that the vendored assets do not cover: " + ", ".join(rw.unknown))
    return out


def rewrite_css(css: str, assets_href: str, *, manifest: Manifest | None = None, strict: bool = True) -> str:
    """The same rewrite for a stylesheet's text (url() and @import)."""
    rw = _Rewriter(assets_href.rstrip("/"), manifest or load_manifest())
    out = rw.css(css)
    if rw.unknown and strict:
        raise OfflineError("loads of another host that the vendored assets do not cover: " + ", ".join(rw.unknown))
    return out


# ---------------------------------------------------------------- the assets folder

_sync_lock = threading.Lock()
_synced: set[tuple[str, str]] = set()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            shutil.copyfileobj(inp, out)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sync_assets(dest: Path, *, source: Path = PACKAGE_ASSETS, force: bool = False) -> Path:
    """Make `dest` hold the vendored assets; returns `dest`.

    Copies only files that are missing or differ (by sha256), each replaced atomically,
    so concurrent processes and readers never see a half-written file. Files not in the
    manifest are left alone (pages rendered against older asset versions keep working).
    The check runs once per process and folder unless `force`.
    """
    manifest = load_manifest(source)
    key = (os.path.abspath(dest), manifest.digest)
    with _sync_lock:
        if key in _synced and not force:
            return dest
        for rel, (digest, size) in manifest.files.items():
            target = dest / rel
            if target.is_file() and target.stat().st_size == size and _sha256(target) == digest:
                continue
            src = source / rel
            if _sha256(src) != digest:
                raise OfflineError(f"packaged asset {rel} does not match MANIFEST.json")
            _atomic_copy(src, target)
        _atomic_copy(source / "MANIFEST.json", dest / "MANIFEST.json")
        _synced.add(key)
    return dest


# ---------------------------------------------------------------- a whole site


@dataclass
class OfflineReport:
    pages: int = 0  # HTML files looked at
    changed: int = 0  # HTML files rewritten
    references: int = 0  # loads pointed at the assets folder
    dropped: list[str] = field(default_factory=list)  # unknown loads removed (strict=False)
    static_removed: bool = False


def _relative_href(from_dir: str, to_dir: str) -> str:
    return Path(os.path.relpath(to_dir, from_dir)).as_posix()


def make_offline(
    site_root: Path,
    assets_root_rel: str = f"../{ASSETS_DIRNAME}",
    *,
    sync: bool = True,
    remove_static: bool = True,
    strict: bool = True,
) -> OfflineReport:
    """Rewrite a built GX site in place so that it loads only the shared assets.

    `site_root` is the folder holding the site's index.html; `assets_root_rel` the
    assets folder relative to it (default: `_assets` beside the site, i.e. in the
    docs dir). With `sync`, the assets are copied there first (once per process).
    With `remove_static`, the site's own `static/` copy is deleted afterwards.
    In strict mode nothing is written unless every page can be made offline.
    """
    site_root = Path(site_root)
    if Path(assets_root_rel).is_absolute() or _SCHEME.match(assets_root_rel):
        raise ValueError(f"assets_root_rel must be relative to the site, got {assets_root_rel!r}")
    assets_dir = os.path.normpath(os.path.join(os.path.abspath(site_root), assets_root_rel))
    if sync:
        sync_assets(Path(assets_dir))
    manifest = load_manifest()

    report = OfflineReport()
    pending: list[tuple[Path, str]] = []
    unknown: list[str] = []
    for page in sorted(site_root.rglob("*.html")):
        if page.relative_to(site_root).parts[0] == "static":
            continue
        report.pages += 1
        source = page.read_text(encoding="utf-8")
        rw = _Rewriter(_relative_href(os.path.abspath(page.parent), assets_dir), manifest)
        out = _rewrite(source, rw)
        report.references += len(rw.rewritten)
        unknown += [f"{page.relative_to(site_root)}: {u}" for u in rw.unknown]
        if out != source:
            pending.append((page, out))
    if unknown and strict:
        raise OfflineError("loads of another host that the vendored assets do not cover:\n  " + "\n  ".join(unknown))
    report.dropped = unknown

    for page, text in pending:
        fd, tmp = tempfile.mkstemp(dir=page.parent, prefix=f".{page.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, page)
        report.changed += 1

    static = site_root / "static"
    if remove_static and static.is_dir():
        shutil.rmtree(static)
        report.static_removed = True
    return report


def assets_href_for(page: Path, assets_dir: Path) -> str:
    """The `assets_href` for `rewrite_html` of one page (both paths on the same base)."""
    return posixpath.normpath(_relative_href(os.path.abspath(Path(page).parent), os.path.abspath(assets_dir)))
