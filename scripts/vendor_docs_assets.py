#!/usr/bin/env python3
"""Re-fetch the assets that Great Expectations Data Docs load from CDNs.

Run by a maintainer (not by CI) from the repository root, with the project's venv:

    .venv/bin/python scripts/vendor_docs_assets.py            # rewrite docs_assets/
    .venv/bin/python scripts/vendor_docs_assets.py --check    # only compare, exit 1 on drift

It needs `npm` (it runs `npm pack NAME@VERSION`, which checks each tarball against the
registry's integrity hash) and the installed `great_expectations` (for its own static
images and to read its page templates). The output is
`include/linkage/validation/docs_assets/`:

    <name>@<version>/<path in the package, minus a leading dist/ or build/>
    <name>@<version>/LICENSE*          the package's own license text
    MANIFEST.json                      CDN URL -> local file, package, sha256 of every file

Re-running with the same table gives byte-identical files and MANIFEST.json (no dates
are written). Before writing, it scans the installed GX templates for every absolute
URL: one that is neither in the table nor a plain hyperlink stops the run, so a GX
upgrade that loads something new is noticed here; SRI `integrity` values found in the
templates are checked against the fetched bytes.

The unpinned CDN ranges (`vega@5`, `vega-lite@5`, `vega-embed@6`) are pinned below to
the versions the CDN resolved them to when vendored; `--show-ranges` prints what the
registry resolves them to today (`npm view`), so a maintainer can bump the table.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "include" / "linkage" / "validation" / "docs_assets"

S3 = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    strip: str = ""  # leading directory dropped from local paths ("dist/", "build/")
    cdn_range: str = ""  # the range the CDN URL names, when it is not a full version
    license_from: str = ""  # another npm package@version of the same repository, for its license

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


BOOTSTRAP = Package("bootstrap", "4.3.1", "dist/")
JQUERY = Package("jquery", "3.7.1", "dist/")
POPPER = Package("popper.js", "1.12.9", "dist/")
BT_1191 = Package("bootstrap-table", "1.19.1", "dist/")
BT_1190 = Package("bootstrap-table", "1.19.0", "dist/")
DATEPICKER = Package("bootstrap-datepicker", "1.9.0", "dist/")
DARK = Package("@forevolve/bootstrap-dark", "1.1.0", "dist/")
FONTAWESOME = Package("@fortawesome/fontawesome-free", "6.6.0")
# The vega 5.33.1 tarball ships no license file; 5.33.0, one patch release earlier, does.
VEGA = Package("vega", "5.33.1", "build/", cdn_range="5", license_from="vega@5.33.0")
VEGA_LITE = Package("vega-lite", "5.23.0", "build/", cdn_range="5")
VEGA_EMBED = Package("vega-embed", "6.29.0", "build/", cdn_range="6")

# (URL the GX templates load, package, path inside the npm tarball)
NPM_URLS: list[tuple[str, Package, str]] = [
    ("https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css", BOOTSTRAP, "dist/css/bootstrap.min.css"),
    ("https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js", BOOTSTRAP, "dist/js/bootstrap.min.js"),
    ("https://code.jquery.com/jquery-3.7.1.min.js", JQUERY, "dist/jquery.min.js"),
    ("https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js", POPPER, "dist/umd/popper.min.js"),
    ("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css", BT_1191, "dist/bootstrap-table.min.css"),
    ("https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js", BT_1191, "dist/bootstrap-table.min.js"),
    (
        "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
        BT_1191,
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.js",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css",
        BT_1190,
        "dist/extensions/filter-control/bootstrap-table-filter-control.css",
    ),
    (
        "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
        BT_1190,
        "dist/extensions/filter-control/bootstrap-table-filter-control.min.css",
    ),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css",
        DATEPICKER,
        "dist/css/bootstrap-datepicker.min.css",
    ),
    (
        "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js",
        DATEPICKER,
        "dist/js/bootstrap-datepicker.min.js",
    ),
    (
        "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css",
        DARK,
        "dist/css/bootstrap-prefers-dark.css",
    ),
    ("https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css", FONTAWESOME, "css/all.min.css"),
    # jsDelivr serves a bare package URL as the file named by package.json's "jsdelivr" field.
    ("https://cdn.jsdelivr.net/npm/vega@5", VEGA, "build/vega.min.js"),
    ("https://cdn.jsdelivr.net/npm/vega-lite@5", VEGA_LITE, "build/vega-lite.min.js"),
    ("https://cdn.jsdelivr.net/npm/vega-embed@6", VEGA_EMBED, "build/vega-embed.min.js"),
]

# GX's own files, copied from the installed distribution's render/view/static/.
GX_STATIC_FILES = ["images/favicon.ico", "images/logo-long.png"]
# (URL, file under static/, note). The navbar logo is loaded from S3 (with a tracking
# query string); the dark-mode CSS loads a dark variant that no package ships.
GX_URLS: list[tuple[str, str, str]] = [
    (S3 + "logo-long.png", "images/logo-long.png", "GX's packaged copy of the logo"),
    (
        S3 + "full_logo_dark.png",
        "images/logo-long.png",
        "substitute: the dark-mode logo exists only on GX's S3 bucket; the light logo is used",
    ),
]

# Absolute URLs in the templates that are hyperlinks (<a href>), never loaded.
LINK_ONLY_PREFIXES = ("https://greatexpectations.io",)

LICENSE_NAMES = re.compile(r"^(licen[sc]e|copying)(\.(txt|md))?$", re.I)

MIT_TEXT = """Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

CSS_URL = re.compile(
    r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)|@import\s+(?:"([^"]*)"|'([^']*)')""", re.I
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def local_path(pkg: Package, package_path: str) -> str:
    if pkg.strip:
        if not package_path.startswith(pkg.strip):
            raise SystemExit(f"{pkg.key}: {package_path} is outside {pkg.strip}")
        package_path = package_path[len(pkg.strip) :]
    return f"{pkg.key}/{package_path}"


class Tarball:
    def __init__(self, pkg: Package, cache: Path):
        proc = subprocess.run(
            ["npm", "pack", "--json", "--pack-destination", str(cache), pkg.key],
            check=True,
            capture_output=True,
            text=True,
        )
        meta = json.loads(proc.stdout)[0]
        if meta["name"] != pkg.name or meta["version"] != pkg.version:
            raise SystemExit(f"npm pack {pkg.key} gave {meta['name']}@{meta['version']}")
        self.integrity = meta["integrity"]
        self.members: dict[str, bytes] = {}
        with tarfile.open(cache / meta["filename"], "r:gz") as tar:
            for m in tar.getmembers():
                if m.isfile():
                    name = m.name.split("/", 1)[1]  # drop the top folder ("package/")
                    self.members[name] = tar.extractfile(m).read()  # type: ignore[union-attr]

    def read(self, path: str) -> bytes:
        try:
            return self.members[path]
        except KeyError:
            raise SystemExit(f"not in the tarball: {path}") from None

    def license(self) -> tuple[str, bytes] | None:
        top = sorted(p for p in self.members if "/" not in p and LICENSE_NAMES.match(p))
        return (top[0], self.members[top[0]]) if top else None


def css_dependencies(css: bytes) -> list[str]:
    refs = []
    for m in CSS_URL.finditer(css.decode("utf-8", "replace")):
        ref = next((g for g in m.groups() if g is not None), "").strip()
        if not ref or ref.startswith(("data:", "#")):
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*:|^//", ref, re.I):
            raise SystemExit(f"stylesheet loads an absolute URL: {ref}")
        refs.append(re.split(r"[?#]", ref, maxsplit=1)[0])
    return refs


def gx_templates_urls(gx_view: Path) -> dict[str, set[str]]:
    """Every absolute URL in the installed GX templates, with the files naming it."""
    found: dict[str, set[str]] = {}
    for f in sorted([*gx_view.glob("templates/*.j2"), *gx_view.glob("static/styles/*.css")]):
        for url in re.findall(r"""https?://[^\s"'<>)]+""", f.read_text()):
            found.setdefault(url, set()).add(f.name)
    return found


def gx_template_integrity(gx_view: Path) -> dict[str, str]:
    sri = {}
    for f in gx_view.glob("templates/*.j2"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", f.read_text()):
            url = re.search(r"""(?:src|href)="([^"]+)\"""", tag)
            integ = re.search(r"""integrity="([^"]+)\"""", tag)
            if url and integ:
                sri[url.group(1)] = integ.group(1)
    return sri


def build(cache: Path) -> dict[str, bytes]:
    """All files of docs_assets/ (relative path -> bytes), MANIFEST.json included."""
    import great_expectations

    gx_view = Path(great_expectations.__file__).parent / "render" / "view"
    gx_version = great_expectations.__version__
    gx_key = f"great_expectations@{gx_version}"

    covered = {u for u, _, _ in NPM_URLS} | {u for u, _, _ in GX_URLS}
    unknown = []
    for url, where in gx_templates_urls(gx_view).items():
        if url in covered or url.startswith(LINK_ONLY_PREFIXES):
            continue
        if any(c.startswith(url) for c in covered):  # a base the template appends to
            continue
        unknown.append(f"{url} ({', '.join(sorted(where))})")
    if unknown:
        raise SystemExit("GX templates name URLs this table does not cover:\n  " + "\n  ".join(unknown))

    files: dict[str, bytes] = {}
    file_meta: dict[str, dict] = {}
    packages: dict[str, dict] = {}
    urls: dict[str, dict] = {}
    tarballs: dict[str, Tarball] = {}

    def add(rel: str, data: bytes, package: str, package_path: str) -> None:
        if rel in files and files[rel] != data:
            raise SystemExit(f"two different files for {rel}")
        files[rel] = data
        file_meta[rel] = {"package": package, "package_path": package_path, "sha256": sha256(data), "size": len(data)}

    for url, pkg, ppath in NPM_URLS:
        if pkg.key not in tarballs:
            tb = tarballs[pkg.key] = Tarball(pkg, cache)
            lic = tb.license()
            entry = {"source": f"npm {pkg.key}", "integrity": tb.integrity}
            if pkg.cdn_range:
                entry["cdn_range"] = f"{pkg.name}@{pkg.cdn_range}"
            if lic:
                add(f"{pkg.key}/{lic[0]}", lic[1], pkg.key, lic[0])
                entry["license_file"] = f"{pkg.key}/{lic[0]}"
            elif pkg.license_from:
                name, _, version = pkg.license_from.rpartition("@")
                other = Tarball(Package(name, version), cache).license()
                if other is None:
                    raise SystemExit(f"{pkg.license_from} has no license file either")
                text = f"{pkg.key} ships no license file; this is the one {pkg.license_from} ships.\n\n"
                add(f"{pkg.key}/LICENSE", text.encode() + other[1], pkg.license_from, other[0])
                entry["license_file"] = f"{pkg.key}/LICENSE"
                entry["license_from"] = f"npm {pkg.license_from}"
            else:  # popper.js 1.x ships no license file; its header names MIT.
                header = tb.read(ppath).decode()[:400]
                notice = re.search(r"/\*(.*?)\*/", header, re.S)
                if not notice or "MIT" not in notice.group(1):
                    raise SystemExit(f"{pkg.key}: no license file and no MIT notice")
                text = (
                    f"{pkg.key} ships no license file; package.json says MIT and {ppath} begins:\n"
                    f"{notice.group(1).strip()}\n\nThe MIT License\n\n{MIT_TEXT}"
                )
                add(f"{pkg.key}/LICENSE.txt", text.encode(), pkg.key, "(MIT text; see first line)")
                entry["license_file"] = f"{pkg.key}/LICENSE.txt"
            packages[pkg.key] = entry
        tb = tarballs[pkg.key]
        rel = local_path(pkg, ppath)
        data = tb.read(ppath)
        add(rel, data, pkg.key, ppath)
        urls[url] = {"file": rel, "package": pkg.key, "package_path": ppath}
        # What a stylesheet loads in turn (font-awesome's ../webfonts/*), same layout.
        if ppath.endswith(".css"):
            for ref in css_dependencies(data):
                dep_ppath = posixpath.normpath(posixpath.join(posixpath.dirname(ppath), ref))
                dep_rel = local_path(pkg, dep_ppath)
                if posixpath.normpath(posixpath.join(posixpath.dirname(rel), ref)) != dep_rel:
                    raise SystemExit(f"{rel}: {ref} would not resolve after stripping {pkg.strip}")
                add(dep_rel, tb.read(dep_ppath), pkg.key, dep_ppath)

    gx_dist = Path(great_expectations.__file__).parent.parent / f"great_expectations-{gx_version}.dist-info"
    gx_license = next(iter(sorted(gx_dist.glob("licenses/LICENSE*"))) or sorted(gx_dist.glob("LICENSE*")), None)
    if gx_license is None:
        raise SystemExit(f"no LICENSE in {gx_dist}")
    add(f"{gx_key}/LICENSE", gx_license.read_bytes(), gx_key, "dist-info license")
    for name in GX_STATIC_FILES:
        add(f"{gx_key}/static/{name}", (gx_view / "static" / name).read_bytes(), gx_key, f"render/view/static/{name}")
    packages[gx_key] = {
        "source": f"PyPI great-expectations=={gx_version}, render/view/static/ of the installed package",
        "license_file": f"{gx_key}/LICENSE",
    }
    for url, name, note in GX_URLS:
        urls[url] = {"file": f"{gx_key}/static/{name}", "package": gx_key,
                     "package_path": f"render/view/static/{name}", "note": note}

    for url, sri in gx_template_integrity(gx_view).items():
        algo, _, digest = sri.partition("-")
        data = files[urls[url]["file"]]
        got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
        if got != digest:
            raise SystemExit(f"{url}: the template's integrity {sri} does not match the npm file ({algo}-{got})")
        urls[url]["template_integrity"] = sri

    manifest = {
        "format": 1,
        "generated_by": "scripts/vendor_docs_assets.py",
        "great_expectations": gx_version,
        "gx_static": f"{gx_key}/static",
        "urls": dict(sorted(urls.items())),
        "packages": dict(sorted(packages.items())),
        "files": dict(sorted(file_meta.items())),
    }
    files["MANIFEST.json"] = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()
    return files


def current(out: Path) -> dict[str, bytes]:
    if not out.exists():
        return {}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="compare with the committed files; write nothing")
    ap.add_argument("--show-ranges", action="store_true", help="print what the CDN ranges resolve to today")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    if args.show_ranges:
        for pkg in (VEGA, VEGA_LITE, VEGA_EMBED):
            proc = subprocess.run(
                ["npm", "view", f"{pkg.name}@{pkg.cdn_range}", "version", "--json"],
                check=True, capture_output=True, text=True,
            )
            versions = json.loads(proc.stdout)
            versions = [versions] if isinstance(versions, str) else versions
            newest = max(versions, key=lambda v: tuple(int(x) for x in v.split("-")[0].split(".")))
            print(f"{pkg.name}@{pkg.cdn_range}: registry {newest}, vendored {pkg.version}")
        return 0

    with tempfile.TemporaryDirectory(prefix="vendor-docs-") as tmp:
        files = build(Path(tmp))

    before = current(args.out)
    changed = sorted(p for p in files.keys() | before.keys() if files.get(p) != before.get(p))
    if args.check:
        for p in changed:
            print(f"differs: {p}")
        print("up to date" if not changed else f"{len(changed)} file(s) differ")
        return 1 if changed else 0

    staging = args.out.with_name(args.out.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    for rel, data in files.items():
        dest = staging / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB, to {args.out.relative_to(ROOT)}")
    for p in changed:
        print(f"  changed: {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
