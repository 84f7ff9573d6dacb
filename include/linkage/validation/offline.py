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

What counts as a load, and how one is rewritten, is `rewrite` (the pure part).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from linkage.validation.rewrite import PACKAGE_ASSETS, OfflineError, Rewriter, load_manifest, rewrite_loads, scheme_of

ASSETS_DIRNAME = "_assets"
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
    if Path(assets_root_rel).is_absolute() or scheme_of(assets_root_rel):
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
        rw = Rewriter(_relative_href(os.path.abspath(page.parent), assets_dir), manifest)
        out = rewrite_loads(source, rw)
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
