"""Data Docs that load nothing from another host (linkage.validation.offline).

A real GX 1.x site is built (ephemeral context, pandas dataframe asset, a Checkpoint
with UpdateDataDocsAction on a filesystem site), rewritten with `make_offline`, and
then checked by a parser of this file's own (not the module's): every resource a page
loads is a relative URL to a file that exists under the docs dir's `_assets/`. The
browser test loads the pages in headless Chromium, over HTTP under a URL prefix and
from file://, and records every request the page makes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from linkage.validation.offline import ASSETS_DIRNAME, make_offline, sync_assets
from linkage.validation.rewrite import PACKAGE_ASSETS, OfflineError, load_manifest, rewrite_css, rewrite_html

from browser import chromium, load

RUN_SLUG = "run-20261126T0300"
SITE_NAME = "linkage_offline_test"
OBSERVED = 0.8682
CDN_HOSTS = (
    "cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "code.jquery.com",
    "maxcdn.bootstrapcdn.com", "stackpath.bootstrapcdn.com", "amazonaws.com",
)


# ---------------------------------------------------------------- a real GX site


def build_gx_site(site_dir: Path, values: list[float], dtype: object = object):  # type: ignore[no-untyped-def]
    """One checkpoint run writing Data Docs for two suites (one with a dot in its name:
    GX makes a folder per dot, so pages sit at different depths)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.add_data_docs_site(SITE_NAME, {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "show_how_to_buttons": False,
    })
    batch = context.data_sources.add_pandas("linkage").add_dataframe_asset("observations") \
        .add_batch_definition_whole_dataframe("run")
    definitions = []
    for suite_name, low in (("linkage.coverage", 0.9), ("counts", 0.0)):
        suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
        suite.add_expectation(gxe.ExpectColumnMaxToBeBetween(column="coverage", min_value=low, max_value=1.0))
        suite.add_expectation(gxe.ExpectColumnMinToBeBetween(column="coverage", min_value=0.0, max_value=1.0))
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=f"vd-{suite_name}", data=batch, suite=suite)))
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name="offline", validation_definitions=definitions,
        actions=[UpdateDataDocsAction(name="docs", site_names=[SITE_NAME])]))
    frame = pd.DataFrame({"coverage": pd.Series(values, dtype=dtype)})
    return checkpoint.run(batch_parameters={"dataframe": frame})


@pytest.fixture(scope="module")
def raw_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("raw") / RUN_SLUG
    build_gx_site(site, [0.5, OBSERVED])
    return site


@pytest.fixture(scope="module")
def docs_dir(raw_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<base>/nightly/docs/{_assets, RUN_SLUG}: the lead's layout, one level under a prefix."""
    docs = tmp_path_factory.mktemp("served") / "nightly" / "docs"
    shutil.copytree(raw_site, docs / RUN_SLUG)
    report = make_offline(docs / RUN_SLUG)
    assert report.pages == 5 and report.changed == 5 and report.static_removed and not report.dropped
    return docs


def pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if ASSETS_DIRNAME not in p.relative_to(root).parts)


def validation_page(docs: Path, suite_folder: str = "linkage/coverage") -> Path:
    (page,) = (docs / RUN_SLUG / "validations" / suite_folder).rglob("*.html")
    return page


# ---------------------------------------------------------------- an independent checker

CSS_URL = re.compile(r"""url\(\s*(?:"([^"]*)"|'([^']*)'|([^)"'\s]*))\s*\)|@import\s+(?:"([^"]*)"|'([^']*)')""", re.I)
LOADING_ATTRS = {"src", "srcset", "poster", "data", "background", "href", "xlink:href"}
NOT_LOADED_HREF = {"a", "area", "base"}  # hyperlinks; <base> is checked separately


def css_urls(css: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in CSS_URL.finditer(css)]


class Loads(HTMLParser):
    """Every URL a page makes the browser fetch, as written in the page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (where, url)
        self.sri: list[str] = []
        self.bases: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in ("integrity", "crossorigin"):
                self.sri.append(f"<{tag} {name}>")
            if tag == "base" and name == "href":
                self.bases.append(value)
            if name == "style":
                self.urls += [(f"<{tag} style>", u) for u in css_urls(value)]
            elif name in LOADING_ATTRS and not (name == "href" and tag in NOT_LOADED_HREF):
                if tag == "object" and name != "data":
                    continue
                found = [c.strip().split()[0] for c in value.split(",") if c.strip()] if name == "srcset" else [value]
                self.urls += [(f"<{tag} {name}>", u) for u in found]

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.urls += [("<style>", u) for u in css_urls(data)]


def is_request(url: str) -> bool:
    return bool(url) and not url.startswith(("data:", "#", "javascript:", "about:"))


def off_host(url: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//", url)) and not url.startswith("data:")


def loads_of(page: Path) -> Loads:
    parser = Loads()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


# ---------------------------------------------------------------- the site, statically


def test_the_raw_gx_site_does_call_out(raw_site: Path) -> None:
    """The checker is not vacuous: GX's own pages load from CDNs and S3."""
    for page in pages(raw_site):
        external = {u for _, u in loads_of(page).urls if off_host(u)}
        assert len(external) >= 17, (page, external)
        assert any("amazonaws.com" in u for u in external)
        assert any(u.startswith(("./static/", "../")) for _, u in loads_of(page).urls)
    assert (raw_site / "static").is_dir()


@pytest.mark.timeout(120)
def test_no_page_loads_from_another_host_and_every_file_exists(docs_dir: Path) -> None:
    assets = (docs_dir / ASSETS_DIRNAME).resolve()
    checked = 0
    for page in pages(docs_dir):
        found = loads_of(page)
        assert not found.bases, f"{page}: <base href> would change how relative URLs resolve"
        assert not found.sri, f"{page}: {found.sri}"
        for where, url in found.urls:
            if not is_request(url):
                continue
            assert not off_host(url), f"{page.relative_to(docs_dir)}: {where} loads {url}"
            target = (page.parent / unquote(urlsplit(url).path)).resolve()
            assert target.is_file(), f"{page.relative_to(docs_dir)}: {where} {url} -> {target} is missing"
            assert target.is_relative_to(assets), f"{page.relative_to(docs_dir)}: {url} is not a shared asset"
            checked += 1
        # Nothing else (an inline script, a template we missed) names a CDN host outside a hyperlink.
        text = re.sub(r"<a\b[^>]*>", "", page.read_text(encoding="utf-8"))
        assert not [h for h in CDN_HOSTS if h in text], page
    assert checked >= 5 * 18


def test_vendored_stylesheets_load_only_vendored_files(docs_dir: Path) -> None:
    assets = docs_dir / ASSETS_DIRNAME
    fonts = 0
    for css in sorted(assets.rglob("*.css")):
        for url in css_urls(css.read_text(encoding="utf-8")):
            if not is_request(url):
                continue
            assert not off_host(url), f"{css.relative_to(assets)} loads {url}"
            target = (css.parent / unquote(urlsplit(url).path)).resolve()
            assert target.is_file(), f"{css.relative_to(assets)}: {url} is missing"
            fonts += "/webfonts/" in target.as_posix()
    assert fonts >= 8  # font-awesome's all.min.css -> ../webfonts/*.woff2|ttf


def test_the_site_keeps_no_static_copy_and_the_assets_are_shared(docs_dir: Path, raw_site: Path) -> None:
    site = docs_dir / RUN_SLUG
    assert not (site / "static").exists()
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    raw = sum(p.stat().st_size for p in raw_site.rglob("*") if p.is_file())
    assert size < 300_000 and raw > 4_000_000, (size, raw)


def test_make_offline_is_idempotent(docs_dir: Path) -> None:
    before = {p: p.read_bytes() for p in pages(docs_dir)}
    report = make_offline(docs_dir / RUN_SLUG)
    assert (report.pages, report.changed, report.references) == (5, 0, 0)
    assert before == {p: p.read_bytes() for p in pages(docs_dir)}


def test_pages_link_home_and_between_themselves(docs_dir: Path) -> None:
    """Hyperlinks are untouched: the breadcrumb 'Home' of a validation page still reaches the index."""
    page = validation_page(docs_dir)
    homes = re.findall(r'<a href="([^"]*index\.html)">Home</a>', page.read_text())
    assert homes and all((page.parent / h).resolve() == (docs_dir / RUN_SLUG / "index.html").resolve() for h in homes)


def test_the_validation_page_shows_the_observed_value(docs_dir: Path) -> None:
    """With the dataframe's values as Python floats (dtype=object), the Observed Value
    cells of the Max and Min expectations read 0.8682 and 0.5."""
    html = validation_page(docs_dir).read_text(encoding="utf-8")
    cells = re.findall(r'<div class="show-scrollbars">([^<]*)</div></td></tr>', html)
    assert str(OBSERVED) in cells and "0.5" in cells, cells


@pytest.mark.timeout(120)
def test_observed_values_numpy_float64_versus_python_float(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """GX 1.24's num_to_str cannot format a numpy float64 (numpy 2 reprs it as
    'np.float64(0.8682)'). The site UpdateDataDocsAction builds renders from the stored,
    JSON-serialised result and shows the value either way; rendering the in-memory
    result (ValidationResultsPageRenderer on checkpoint_result.run_results) loses it,
    unless the dataframe holds Python floats (dtype=object)."""
    import logging

    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    def direct(result) -> str:  # type: ignore[no-untyped-def]
        (run,) = [r for r in result.run_results.values() if r.suite_name == "linkage.coverage"]
        return DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(run))

    as_float64 = build_gx_site(tmp_path / "f64", [0.5, OBSERVED], dtype="float64")
    (page,) = (tmp_path / "f64" / "validations" / "linkage" / "coverage").rglob("*.html")
    assert str(OBSERVED) in page.read_text()
    with caplog.at_level(logging.ERROR):
        html = direct(as_float64)
    refused = "num_to_str received an invalid value: 0.8682 of type float64"
    assert str(OBSERVED) not in html and refused in caplog.text, (
        "GX now formats numpy float64: the dtype=object workaround is no longer needed")
    caplog.clear()
    as_object = build_gx_site(tmp_path / "obj", [0.5, OBSERVED], dtype=object)
    with caplog.at_level(logging.ERROR):
        html = direct(as_object)
    assert str(OBSERVED) in html and "num_to_str" not in caplog.text


# ---------------------------------------------------------------- the pure function


MANIFEST = load_manifest()
BOOTSTRAP_JS = "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js"
DARK_LOGO = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png"


def test_rewrite_html_cases() -> None:
    page = f"""<!DOCTYPE html><html><head>
<script src="{BOOTSTRAP_JS}" integrity="sha384-x" crossorigin="anonymous"></script>
<link rel="shortcut icon" href="../../static/images/favicon.ico" type="image/x-icon"/>
<style>.a {{ background: url('{DARK_LOGO}') }}</style>
</head><body>
<img
  class="NO-CACHE"
  src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20261126T1Z&amp;dataContextId=abc"
  alt="Great &amp; Expectations"/>
<a href="https://greatexpectations.io/newsletter?utm_source=datadocs&amp;x=1">Subscribe</a>
<a href="../index.html">Home</a><img src="data:image/png;base64,AAAA">
<div style="background-image: url(./static/images/favicon.ico)">x</div>
<script>var s = "<b>https://cdn.jsdelivr.net/npm/vega@5</b>";</script>
</body></html>"""
    out = rewrite_html(page, "../../../_assets")
    assert '<script src="../../../_assets/bootstrap@4.3.1/js/bootstrap.min.js"></script>' in out
    assert 'href="../../../_assets/great_expectations@1.24.1/static/images/favicon.ico" type="image/x-icon" />' in out
    assert "url('../../../_assets/great_expectations@1.24.1/static/images/logo-long.png')" in out
    logo = "../../../_assets/great_expectations@1.24.1/static/images/logo-long.png"
    assert f'src="{logo}" alt="Great &amp; Expectations"' in out
    assert "dataContextId" not in out and "integrity" not in out and "crossorigin" not in out
    # hyperlinks, data: URIs, page-relative links and script text stay byte for byte
    for kept in ('<a href="https://greatexpectations.io/newsletter?utm_source=datadocs&amp;x=1">',
                 '<a href="../index.html">', '<img src="data:image/png;base64,AAAA">',
                 'var s = "<b>https://cdn.jsdelivr.net/npm/vega@5</b>";'):
        assert kept in out
    assert "url(../../../_assets/great_expectations@1.24.1/static/images/favicon.ico)" in out
    assert rewrite_html(out, "../../../_assets") == out  # idempotent
    assert rewrite_html("<p>nothing to load</p>", "../_assets") == "<p>nothing to load</p>"


def test_every_manifest_url_is_rewritten_to_its_file() -> None:
    for url, local in MANIFEST.urls.items():
        out = rewrite_html(f'<script src="{url}"></script>', "_assets")
        assert out == f'<script src="_assets/{local}"></script>'
        assert (PACKAGE_ASSETS / local).is_file()


def test_an_unknown_host_is_refused_or_dropped() -> None:
    page = '<link rel="stylesheet" href="https://fonts.example.org/x.css"><script src="//evil.example/x.js"></script>'
    with pytest.raises(OfflineError, match="fonts.example.org"):
        rewrite_html(page, "../_assets")
    assert rewrite_html(page, "../_assets", strict=False) == '<link rel="stylesheet"><script></script>'
    with pytest.raises(OfflineError):
        rewrite_css("@import 'https://fonts.example.org/x.css';", "_assets")
    with pytest.raises(ValueError):
        rewrite_html(page, "/_assets")


def test_make_offline_refuses_before_writing_anything(tmp_path: Path) -> None:
    site = tmp_path / "docs" / "run"
    (site / "static").mkdir(parents=True)
    good = f'<script src="{BOOTSTRAP_JS}"></script>'
    (site / "index.html").write_text(good)
    (site / "other.html").write_text('<img src="https://tracker.example/p.gif">')
    with pytest.raises(OfflineError, match="tracker.example"):
        make_offline(site)
    assert (site / "index.html").read_text() == good and (site / "static").is_dir()
    report = make_offline(site, strict=False)
    assert report.dropped == ["other.html: https://tracker.example/p.gif"] and report.static_removed
    assert (site / "other.html").read_text() == "<img>"
    assert (site / "index.html").read_text() == '<script src="../_assets/bootstrap@4.3.1/js/bootstrap.min.js"></script>'


# ---------------------------------------------------------------- the assets themselves


def test_manifest_matches_the_packaged_files_and_names_their_licenses() -> None:
    data = json.loads((PACKAGE_ASSETS / "MANIFEST.json").read_text())
    on_disk = {p.relative_to(PACKAGE_ASSETS).as_posix() for p in PACKAGE_ASSETS.rglob("*") if p.is_file()}
    assert on_disk == set(data["files"]) | {"MANIFEST.json"}
    for rel, meta in data["files"].items():
        blob = (PACKAGE_ASSETS / rel).read_bytes()
        assert (hashlib.sha256(blob).hexdigest(), len(blob)) == (meta["sha256"], meta["size"]), rel
    for key, pkg in data["packages"].items():
        assert (PACKAGE_ASSETS / pkg["license_file"]).stat().st_size > 500, key
    # The SRI hashes GX's templates carry match the vendored bytes (same file as the CDN's).
    import base64

    sri = {u: e["template_integrity"] for u, e in data["urls"].items() if "template_integrity" in e}
    assert len(sri) == 2
    for url, integrity in sri.items():
        algo, digest = integrity.split("-", 1)
        blob = (PACKAGE_ASSETS / data["urls"][url]["file"]).read_bytes()
        assert base64.b64encode(hashlib.new(algo, blob).digest()).decode() == digest


def test_sync_assets_copies_once_and_repairs(tmp_path: Path) -> None:
    dest = tmp_path / ASSETS_DIRNAME
    assert sync_assets(dest) == dest
    copied = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert copied == set(MANIFEST.files) | {"MANIFEST.json"}
    jquery = dest / "jquery@3.7.1" / "jquery.min.js"
    jquery.write_text("tampered")
    sync_assets(dest)  # once per process: not looked at again
    assert jquery.read_text() == "tampered"
    sync_assets(dest, force=True)
    assert jquery.read_bytes() == (PACKAGE_ASSETS / "jquery@3.7.1" / "jquery.min.js").read_bytes()
    assert not [p for p in dest.rglob("*.tmp")]


# ---------------------------------------------------------------- in a real browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_base(docs_dir: Path) -> Iterator[str]:
    """The folder above nightly/docs served on 127.0.0.1: the docs sit under a URL prefix."""
    root = docs_dir.parents[1]
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/nightly/docs"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


STYLED = """
const nav = document.querySelector('nav.navbar');
const probe = document.createElement('div'); probe.className = 'container-fluid'; document.body.appendChild(probe);
const icon = document.querySelector('i.fas, i.fa, i.far');
return {
  navbarDisplay: getComputedStyle(nav).display,
  containerPadding: getComputedStyle(probe).paddingLeft,
  bodyFont: getComputedStyle(document.body).fontFamily,
  sheets: Array.from(document.styleSheets).map(s => {
    try { return [s.href, s.cssRules.length]; } catch (e) { return [s.href, -1]; }
  }),
  scripts: {jquery: typeof window.jQuery, bootstrapTable: typeof (window.jQuery && jQuery.fn.bootstrapTable),
            modal: typeof (window.jQuery && jQuery.fn.modal), vegaEmbed: typeof window.vegaEmbed,
            datepicker: typeof (window.jQuery && jQuery.fn.datepicker), popper: typeof window.Popper},
  iconFont: icon ? getComputedStyle(icon, '::before').fontFamily : null,
  faLoaded: document.fonts.check('900 16px "Font Awesome 6 Free"'),
  logo: (() => {
    const i = document.querySelector('.navbar-brand img'); return i ? [i.complete, i.naturalWidth] : null;
  })(),
};
"""


def assert_styled(state: dict, icons: bool = True, rules_readable: bool = True) -> None:
    assert state["navbarDisplay"] == "flex", state  # bootstrap's .navbar
    assert state["containerPadding"] == "15px", state  # bootstrap's .container-fluid
    assert "-apple-system" in state["bodyFont"], state  # bootstrap's font stack
    linked = [(href, rules) for href, rules in state["sheets"] if href]  # (the rest: GX's inline <style>s)
    # From file:// each file is its own origin: the sheets apply but their rules are not readable (-1).
    assert len(linked) == 6 and all(rules > 0 if rules_readable else rules != 0 for _, rules in linked), linked
    assert set(state["scripts"].values()) == {"function"}, state["scripts"]
    if icons:  # font-awesome's webfont came through its ../webfonts/ path and draws the icons
        assert state["iconFont"] and "Font Awesome 6 Free" in state["iconFont"] and state["faLoaded"], state
    assert state["logo"] and state["logo"][0] and state["logo"][1] == 366, state


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_in_chromium_over_http_every_request_stays_on_the_host(browser, http_base: str, docs_dir: Path) -> None:  # type: ignore[no-untyped-def]
    targets = [validation_page(docs_dir), validation_page(docs_dir, "counts"),
               docs_dir / RUN_SLUG / "index.html", docs_dir / RUN_SLUG / "expectations" / "linkage" / "coverage.html"]
    for page in targets:
        url = f"{http_base}/{page.relative_to(docs_dir).as_posix()}"
        seen = load(browser, url)
        urls = [r["url"] for r in seen.values() if "url" in r]
        assert url in urls
        requests = [u for u in urls if not u.startswith("data:")]
        assert all(u.startswith("http://127.0.0.1:") for u in requests), [u for u in requests if not u.startswith("http://127.0.0.1:")]
        assert [r for r in seen.values() if "failed" in r] == []
        assert {r["url"]: r.get("status") for r in seen.values() if r.get("status") not in (200, None)} == {}
        fetched = {u.rsplit("/", 1)[-1] for u in requests}
        assert {"bootstrap.min.css", "jquery.min.js", "all.min.css", "logo-long.png"} <= fetched, page
        has_icons = "expectations" not in page.relative_to(docs_dir).parts  # suite pages draw no icon
        assert ("fa-solid-900.woff2" in fetched) == has_icons, (page, fetched)
        # Headless Chromium fetches no favicon (the browser, not the page, would): fetch it from the page.
        icon = browser.execute_async_script(
            "const done = arguments[0], href = document.querySelector('link[rel~=icon]').href;"
            "fetch(href).then(r => done([href, r.status]), e => done([href, String(e)]));")
        assert icon[0].startswith(http_base) and icon[1] == 200, icon
        assert_styled(browser.execute_script(STYLED), icons=has_icons)
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert severe == [], severe
        if page == targets[0]:
            # The observed value is on the page as a person sees it.
            assert str(OBSERVED) in browser.find_element("tag name", "body").text
            browser.save_screenshot("/tmp/docs_offline.png")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_in_chromium_from_file_urls(browser, docs_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Opened straight from disk (no crossorigin left to make file:// loads fail)."""
    page = validation_page(docs_dir)
    seen = load(browser, page.as_uri())
    requests = [r["url"] for r in seen.values() if "url" in r and not r["url"].startswith("data:")]
    assert requests and all(u.startswith("file:///") for u in requests), requests
    assert [r for r in seen.values() if "failed" in r] == []
    assert "fa-solid-900.woff2" in {u.rsplit("/", 1)[-1] for u in requests}
    assert_styled(browser.execute_script(STYLED), rules_readable=False)
    assert str(OBSERVED) in browser.find_element("tag name", "body").text
