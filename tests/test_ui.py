"""What a user sees in the MLflow UI, in a real browser (issue 20): Debian's ``chromium``,
driven by playwright, against ``mlflow server`` serving a small study that tracked to it.

Each test opens a page as a new user would (MLflow 3.17's UI, in its model-training view) and
asserts what must be there: the experiment by name; the parent run with its named children and
their datasets; a description on every run; the registered model with its aliases; report.html
in the artifact viewer and report.md's figures loading there. Screenshots go to a temporary
directory and their paths are printed; the README's two (``docs/ui/``) are copies of them.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow import MlflowClient

from pipelines import main
from robust.tracking import notes
from tests.conftest import isolated_store
from tests.services import missing, mlflow_server

SMALL = main.Params(
    epochs=1,
    attacks=("fgsm",),
    pgd_steps=2,
    metrics=("deepgini", "random"),
    configs=("c2",),
    retrain_seeds=2,
    retrain_steps=2,
    retrain_epochs=1,
    workers=1,
    apgd_steps=2,
    adaptive=("pgd",),
    adaptive_dgn_epochs=1,
    pgd_at=False,
    quiet=True,
)
"""The smallest whole study: train, two attacks, a metric, one retraining configuration, two
adversarially trained models, evaluate, report, registry."""
TIMEOUT_MS = 60_000


@dataclass
class UI:
    url: str
    parent: str
    experiment: str
    children: dict[str, str]  # child name (robust.child.<name>) → run id
    browser: object
    shots: Path

    def open(self, path: str, wait_for: str):
        """A fresh page at ``path`` (under the UI's root), once ``wait_for`` shows; the
        assistant panel closed (it covers a third of the window)."""
        page = self.browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{self.url}/{path}")
        page.get_by_text(wait_for).first.wait_for(timeout=TIMEOUT_MS)
        close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close.count():
            close.first.click()
        return page

    def shot(self, page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    def run_path(self, run_id: str, tail: str = "") -> str:
        return f"#/experiments/{self.experiment}/runs/{run_id}{tail}{notes.VIEW}"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[UI]:
    chromium = _chromium()
    if chromium is None:
        missing("Debian's chromium is not installed (.ci/run installs it with apt)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("ui")
    shots = tmp_path_factory.mktemp("screenshots")
    with (
        mlflow_server(f"sqlite:///{root}/mlflow.db", root) as server,
        isolated_store(root, server.uri),
    ):
        parent = main.main(SMALL)
        run = MlflowClient().get_run(parent)
        children = {
            k.removeprefix("robust.child."): v
            for k, v in run.data.tags.items()
            if k.startswith("robust.child.")
        }
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                yield UI(server.uri, parent, run.info.experiment_id, children, browser, shots)
            finally:
                browser.close()


def _plain(markdown: str) -> str:
    """A description's first line as the UI renders it: no emphasis, links as their text."""
    line = markdown.strip().splitlines()[0]
    line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)
    return re.sub(r"[*`]", "", line)


def test_the_experiment_and_its_named_runs_with_their_datasets(ui):
    page = ui.open("#/experiments", "robust-digits")
    assert page.get_by_text("robust-digits", exact=True).count()
    page = ui.open(f"#/experiments/{ui.experiment}{notes.VIEW}", "main digits")
    page.locator('[data-component-id$="runnamecellrenderer.tsx_46"]').first.click()  # expand
    client = MlflowClient()
    names = {name: client.get_run(run_id).info.run_name for name, run_id in ui.children.items()}
    assert names["train"] == "train digits_cnn" and names["advtrain.fgsm"] == "advtrain fgsm α=0.5"
    for name in names.values():
        page.get_by_text(name, exact=True).first.wait_for(timeout=TIMEOUT_MS)
    # the run table's dataset column: each child's first logged dataset
    text = page.inner_text("body")
    for run_id in ui.children.values():
        used = client.get_run(run_id).inputs.dataset_inputs
        assert used and used[0].dataset.name in text, run_id
    ui.shot(page, "runs")


def test_every_run_shows_its_description_and_datasets(ui):
    client = MlflowClient()
    for run_id in (ui.parent, *ui.children.values()):
        run = client.get_run(run_id)
        page = ui.open(ui.run_path(run_id), run.info.run_name)
        page.get_by_text("Description").first.wait_for(timeout=TIMEOUT_MS)
        first = _plain(run.data.tags[notes.NOTE_TAG])[:40]
        page.get_by_text(first).first.wait_for(timeout=TIMEOUT_MS)
        used = run.inputs.dataset_inputs  # the first, then "+<the others>"
        text = page.inner_text("body")
        if run_id != ui.parent:
            assert used and f"{used[0].dataset.name} ({used[0].dataset.digest})" in text
            assert len(used) == 1 or f"+{len(used) - 1}" in text, run.info.run_name
        if run_id == ui.parent:  # the whole description: findings, a link to every child
            page.get_by_text("Show more").first.click()
            for child in ui.children.values():
                page.locator(f'a[href*="runs/{child}{notes.VIEW}"]').first.wait_for(
                    timeout=TIMEOUT_MS
                )
            ui.shot(page, "parent")
        page.close()


def test_the_registered_model_and_its_aliases(ui):
    page = ui.open(f"#/models/robust-digits{notes.VIEW}", "robust-digits")
    page.get_by_text("most-robust").first.wait_for(timeout=TIMEOUT_MS)
    text = page.inner_text("body")
    assert "original" in text and "most-robust" in text
    versions = MlflowClient().search_model_versions("name='robust-digits'")
    assert len(versions) == 4  # the original, two advtrain models, retrain c2's best
    for v in versions:
        assert f"Version {v.version}" in text
    ui.shot(page, "registry")


def test_report_html_opens_in_the_artifact_viewer(ui):
    page = ui.open(ui.run_path(ui.parent, "/artifacts/report.html"), "report.html")
    frame = page.frame_locator("iframe").first
    frame.get_by_text("robust study: digits").first.wait_for(timeout=TIMEOUT_MS)
    assert frame.locator("img").count() >= 5
    ui.shot(page, "report_html")


def test_report_md_figures_load_in_the_artifact_viewer(ui):
    page = ui.open(ui.run_path(ui.parent, "/artifacts/report.md"), "report.md")
    page.get_by_text("robust study: digits").first.wait_for(timeout=TIMEOUT_MS)
    figures = "Array.from(document.querySelectorAll('img[alt]')).filter(i => i.alt)"
    # every figure fetched from the server (loaded, or failed: naturalWidth 0)
    page.wait_for_function(
        f"() => {{ const f = {figures}; return f.length >= 5 && f.every(i => i.complete); }}",
        timeout=TIMEOUT_MS,
    )
    loaded = page.evaluate(f"() => {figures}.map(i => [i.alt, i.naturalWidth > 0])")
    shown = [alt for alt, _ in loaded if alt]
    assert len(shown) >= 5 and all(ok for _, ok in loaded), loaded
    # run ids in the report link to their runs
    link = page.get_by_role("link", name=ui.children["train"]).first
    assert f"runs/{ui.children['train']}" in (link.get_attribute("href") or "")
    ui.shot(page, "report_md")


def test_readme_screenshots():
    """The README's "In the MLflow UI" screenshots exist, are PNG and under 300 KB each."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\((docs/ui/[^)]+\.png)\)", readme)
    assert len(shown) >= 2
    for rel in shown:
        path = Path(__file__).parents[1] / rel
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size < 300_000, (rel, path.stat().st_size)
