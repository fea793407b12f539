"""The HTML report in a real headless Chromium (Debian's, driven by Playwright): it loads without
console errors, tables sort, filters filter, cells link to their cases, clips play."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from anibench.leaderboard.report import write_report

from conftest import REPO

ARTIFACTS = Path(os.environ.get("ANIBENCH_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("ANIBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium not found: `make test` installs Debian's chromium; or set ANIBENCH_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def report_page(smoke_run, reference_rerun, tmp_path_factory):
    _, out = smoke_run
    page = tmp_path_factory.mktemp("report") / "index.html"
    write_report([out, reference_rerun], html=page, resamples=200)
    return page


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def column_values(page, table_id: str, column: int) -> list[str]:
    return page.eval_on_selector_all(
        f'table[data-table="{table_id}"] tbody tr', f"rows => rows.map(r => r.cells[{column}].getAttribute('data-value'))"
    )


def test_report_works_in_headless_chromium(browser, report_page):
    page, problems = open_page(browser, report_page.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    assert "anibench report" in page.title()
    assert page.locator("table.board").count() >= 5

    # tables sort: by the main table's dynamic_degree column
    headers = page.locator('table[data-table="by-condition"] thead th')
    column = next(i for i, text in enumerate(headers.all_inner_texts()) if text.startswith("dynamic_degree"))
    header = headers.nth(column)
    header.click()
    ascending = [float(v) for v in column_values(page, "by-condition", column) if v]
    assert ascending == sorted(ascending) and len(set(ascending)) > 1
    header.click()
    descending = [float(v) for v in column_values(page, "by-condition", column) if v]
    assert descending == sorted(descending, reverse=True)

    # filters filter
    total = page.locator("#gallery-count").inner_text()
    assert total.endswith("of 36 clips")  # 18 cases × 2 conditions
    page.select_option("#f-style", "3d")
    assert page.locator("#gallery-count").inner_text().endswith("of 18 clips")
    assert all(t.split(" · ")[3] == "3d" for t in page.locator("#gallery-cases .case h3").all_inner_texts())
    page.select_option("#f-label", "running")
    titles = page.locator("#gallery-cases .case h3").all_inner_texts()
    assert len(titles) == 2 and all("running" in t and "3d" in t for t in titles)
    page.fill("#f-search", "no-such-case")
    assert page.locator("#gallery-count").inner_text() == "no clips match"

    # a table cell links to its cases
    page.locator('table[data-table="by-label"] tbody tr').first.locator("td a").first.click()
    page.wait_for_function("location.hash.startsWith('#gallery?')")
    label = page.locator('table[data-table="by-label"] tbody tr').first.locator("td").nth(1).inner_text()
    assert page.input_value("#f-label") == label and page.input_value("#f-style") == ""
    assert all(f" · {label} · " in t for t in page.locator("#gallery-cases .case h3").all_inner_texts())

    # clips, ground truth and guide thumbnails are present and play
    assert page.locator("#gallery-cases video").count() >= 3
    assert page.locator("#gallery-cases .tile.guide img").count() >= 1
    page.wait_for_function("Array.from(document.querySelectorAll('#gallery-cases video')).every(v => v.readyState >= 1)",
                           timeout=15000)
    durations = page.eval_on_selector_all("#gallery-cases video", "vs => vs.map(v => v.duration)")
    assert all(d == pytest.approx(49 / 16, abs=0.1) for d in durations)
    assert page.evaluate("document.querySelector('#gallery-cases img').naturalWidth") > 0
    page.screenshot(path=str(ARTIFACTS / "report-gallery.png"))
    assert not problems, problems
    page.close()


def test_embedded_media_make_one_portable_file(browser, smoke_run, tmp_path):
    _, out = smoke_run
    page_path = tmp_path / "elsewhere" / "report.html"
    write_report([out], html=page_path, media="embed", resamples=100)
    html = page_path.read_text()
    assert "data:video/mp4;base64," in html and "data:image/jpeg;base64," in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # no CDN, no network
    page, problems = open_page(browser, page_path.as_uri())
    page.wait_for_function("document.querySelector('#gallery-cases video').readyState >= 1", timeout=15000)
    assert not problems, problems
    page.close()


def test_a_report_with_missing_pieces_still_renders(browser, smoke_run, tmp_path):
    _, out = smoke_run
    page_path = tmp_path / "report.html"
    text = write_report([out, tmp_path / "not-a-run"], html=page_path, resamples=100)
    assert "not included" in text and "not a run directory" in text
    page, problems = open_page(browser, page_path.as_uri())
    notes = page.locator(".notes").all_inner_texts()
    assert any("not a run directory" in n for n in notes)
    assert any("visual_smoothness" in n for n in notes)  # the AniSora table says what it lacks
    assert not problems, problems
    page.close()


@pytest.fixture(scope="module")
def anisora_run(samples_dir, tmp_path_factory):
    """A real run over the shipped AniSora samples: two labelled clips and one without a label (case_11)."""
    from anibench.runner import score_videos

    out = tmp_path_factory.mktemp("anisora") / "run"
    clips = [samples_dir / "reward" / "video" / "cartoon_films_shuo_hua_26.mp4",
             samples_dir / "reward" / "video" / "cartoon_films_tui_la_13.mp4",
             samples_dir / "anymask_spa" / "case_11_seed666666.mp4"]
    score_videos(clips, out, model="published", suite=f"anisora:{samples_dir}",
                 scorers=["temporal_flickering", "guide_psnr"])
    return out


def test_report_on_the_real_anisora_samples_opens_and_shows_every_case(browser, anisora_run, tmp_path):
    page_path = tmp_path / "anisora" / "index.html"
    write_report([anisora_run], html=page_path, resamples=100)
    page, problems = open_page(browser, page_path.as_uri())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-anisora.png"), full_page=False)
    assert page.locator("#gallery-count").inner_text().endswith("of 3 clips")
    titles = page.locator("#gallery-cases .case h3").all_inner_texts()
    assert [t.split(" · ")[0] for t in titles] == ["cartoon_films_shuo_hua_26", "cartoon_films_tui_la_13",
                                                   "case_11_seed666666"]
    assert "case_11_seed666666 · own · no label · no style" in titles
    labels = page.eval_on_selector_all("#f-label option", "os => os.map(o => o.value)")
    assert labels == ["", "shuo_hua", "tui_la", "(none)"]
    page.select_option("#f-label", "(none)")
    assert page.locator("#gallery-cases .case h3").all_inner_texts() == ["case_11_seed666666 · own · no label · no style"]
    page.select_option("#f-label", "tui_la")
    assert page.locator("#gallery-cases .case h3").all_inner_texts()[0].startswith("cartoon_films_tui_la_13")
    # the by-label table has a (none) row whose cells link to the unlabelled case
    none_row = page.locator('table[data-table="by-label"] tbody tr', has_text="(none)").first
    none_row.locator("td a").first.click()
    page.wait_for_function("location.hash.includes('label=%28none%29')")
    assert page.locator("#gallery-cases .case h3").all_inner_texts() == ["case_11_seed666666 · own · no label · no style"]
    page.wait_for_function("document.querySelector('#gallery-cases video').readyState >= 1", timeout=15000)
    assert not problems, problems
    page.close()
