"""The report opens in headless Chromium with every figure drawn and no console error, offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import optuna
import pytest
from optuna.distributions import FloatDistribution

from _known_study import FAILED_TRIAL, FAILURE_REASON, PRUNED_REASON, PRUNED_TRIAL, write_study_file
from sweeper.analysis import analyze_study
from sweeper.cli import main
from sweeper.report import SECTIONS, render_report, write_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Runs in the page before plotly: records console errors and uncaught exceptions, then, once everything has
# loaded and the report has drawn its figures, which plot divs hold a drawn figure (and which table divs a table). Results land on <html> attributes,
# which --dump-dom prints.
PROBE = """<script>
(function () {
  var errors = [];
  var record = function (text) {
    errors.push(String(text));
    document.documentElement.setAttribute('data-errors', JSON.stringify(errors));
  };
  var consoleError = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, ' '));
    consoleError.apply(console, arguments);
  };
  window.addEventListener('error', function (event) { record(event.message || 'resource failed to load'); }, true);
  window.addEventListener('unhandledrejection', function (event) { record('unhandled rejection: ' + event.reason); });
  var whenDrawn = function (then) {  // the report draws its figures one per task, after its text
    if (document.documentElement.getAttribute('data-figures-drawn') === 'all') { then(); }
    else { document.addEventListener('sweeper-figures-drawn', then); }
  };
  window.addEventListener('load', function () { whenDrawn(function () {
    setTimeout(function () {
      // the figures (plotly) and the tables (HTML), in the page's order
      var plots = Array.prototype.slice.call(document.querySelectorAll('.js-plotly-plot, div.table'));
      var drawn = plots.filter(function (div) {
        if (div.classList.contains('table')) {
          return div.querySelector('table.data thead th') !== null;
        }
        return div.querySelector('.main-svg') !== null && div._fullData && div._fullData.length > 0;
      });
      document.documentElement.setAttribute('data-plots', String(plots.length));
      document.documentElement.setAttribute('data-drawn', drawn.map(function (div) { return div.id; }).join(','));
      document.documentElement.setAttribute('data-errors', JSON.stringify(errors));
    }, 1000);
  }); });
})();
</script>"""


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    message = "no headless Chromium on PATH; install Debian's package: apt-get install -y chromium"
    if os.environ.get("SWEEPER_REQUIRE_CHROMIUM") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _run_chromium(*arguments: str, window: str = "1280,4200") -> subprocess.CompletedProcess:
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-dev-shm-usage",
        "--enable-unsafe-swiftshader",  # parallel coordinates draw with WebGL: software rendering, on purpose
        "--enable-logging=stderr", "--v=0", f"--window-size={window}", "--virtual-time-budget=20000", *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=150)


@pytest.fixture(scope="module")
def report_path(known_analysis, tmp_path_factory):
    return write_report(known_analysis, tmp_path_factory.mktemp("report") / "report.html")


def test_every_figure_renders_in_headless_chromium_without_console_errors(report_path, tmp_path):
    """One Chromium run (each costs seconds): the page's DOM after load, and a screenshot of it."""
    page = report_path.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    screenshot = tmp_path / "report.png"
    run = _run_chromium("--dump-dom", f"--screenshot={screenshot}", probed.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    root = re.search(r"<html[^>]*>", run.stdout).group(0)
    attributes = dict(re.findall(r'data-(plots|drawn|errors)="([^"]*)"', root))
    assert attributes, f"the page never finished loading:\n{run.stderr[-2000:]}"
    errors = json.loads(attributes["errors"].replace("&quot;", '"'))
    uncaught = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert errors == [] and uncaught == [], (errors, uncaught)
    assert int(attributes["plots"]) == len(SECTIONS)
    assert attributes["drawn"].split(",") == [f"figure-{i}" for i in range(len(SECTIONS))]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 100_000  # a blank page of this size compresses to a few kB
    print(f"screenshot: {screenshot}")


# Records which figures had been drawn when the report marked those near the first view drawn, and when the load
# event came; --dump-dom prints them.
ORDER_PROBE = """<script>
(function () {
  var drawnIds = function () {
    return Array.prototype.slice.call(document.querySelectorAll('.js-plotly-plot'))
      .filter(function (div) { return div.querySelector('.main-svg') !== null; })
      .map(function (div) { return div.id; }).join(',');
  };
  new PerformanceObserver(function (list) {
    list.getEntries().forEach(function (entry) {
      document.documentElement.setAttribute('data-' + entry.name, drawnIds());
    });
  }).observe({entryTypes: ['mark']});
  window.addEventListener('load', function () {
    document.documentElement.setAttribute('data-at-load', drawnIds());
  });
})();
</script>"""


def test_the_figures_on_screen_are_drawn_first_and_the_rest_after_the_page_has_loaded(report_path, tmp_path):
    """On a screen-sized window the report draws the figures within a screen of the view first, and the others one
    at a time after the load event: the page's text never waits for the figures below it. A figure that fails to
    draw (one planted below the first screen, drawn after the load event) stops none of the others."""
    broken = ('<div id="figure-broken" class="plotly-graph-div" style="height:100px"></div>'
              '<script>sweeperFigure("figure-broken", function () { throw new Error("planted"); });</script>')
    page = report_path.read_text(encoding="utf-8")
    figures = [f"figure-{i}" for i in range(len(SECTIONS)) if f'sweeperFigure("figure-{i}"' in page]
    last = f'<div id="{figures[-1]}"'
    probed = tmp_path / "order.html"
    probed.write_text(page.replace("<head>", "<head>" + ORDER_PROBE, 1).replace(last, broken + last, 1),
                      encoding="utf-8")
    run = _run_chromium("--dump-dom", probed.as_uri(), window="1280,900")
    assert run.returncode == 0, run.stderr[-2000:]
    root = re.search(r"<html[^>]*>", run.stdout).group(0)
    marks = dict(re.findall(r'data-(sweeper-figures-near|sweeper-figures-all|at-load)="([^"]*)"', root))
    near = marks["sweeper-figures-near"].split(",")
    assert near and near == figures[:len(near)] and len(near) < len(figures) // 2, marks  # the top ones only
    assert set(marks["at-load"].split(",")) - {""} <= set(near)  # nothing below them before the load event
    assert marks["sweeper-figures-all"].split(",") == figures


def _probed(page: str, tmp_path) -> dict[str, str]:
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    run = _run_chromium("--dump-dom", probed.as_uri())
    assert run.returncode == 0, run.stderr[-2000:]
    return dict(re.findall(r'data-(plots|drawn|errors)="([^"]*)"', re.search(r"<html[^>]*>", run.stdout).group(0)))


def test_a_table_is_html_with_every_row_its_colors_and_only_its_markup():
    from sweeper.report._tables import Table

    reasons = [f"rose {i / 100:.3f} <after> & {'more ' * (i % 3)}<br><b>step {i}</b>" for i in range(200)]
    table = Table(["trial", "fit", "rule"], [list(range(200)), ["overfit"] * 200, reasons], "200 <trials>",
                  fill=[["white"] * 200, ["#f8d7da"] * 200, ["white"] * 200])
    page = table.to_html("figure-9")
    assert page.startswith('<div id="figure-9" class="table"><p class="title">200 &lt;trials&gt;</p>')
    assert page.count("<tr>") == 201 and page.count('<td style="background:#f8d7da">overfit</td>') == 200
    assert "rose 0.070 &lt;after&gt; &amp; more <br><b>step 7</b>" in page  # text escaped, its <br> and <b> kept


def test_report_is_self_contained_and_shows_the_analysis(report_path):
    page = report_path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js inline: opens offline
    assert page.count("Plotly.newPlot(") + page.count('<table class="data">') == len(SECTIONS)
    for title in ("Pareto front", "Hypervolume history", "Claims", "Failed and pruned trials"):
        assert title in page
    assert FAILURE_REASON in page and PRUNED_REASON in page
    assert "contradicted" in page and "supported" in page
    assert str(FAILED_TRIAL) in page and str(PRUNED_TRIAL) in page


def test_single_objective_study_renders(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    study = optuna.create_study(study_name="one", storage=url, direction="maximize")
    for number in range(5):
        study.add_trial(optuna.trial.create_trial(
            params={"beta": 0.1 * (number + 1)}, distributions={"beta": FloatDistribution(0.05, 1.0)}, value=number,
        ))
    analysis = analyze_study("one", url)
    assert analysis.hypervolume is None and analysis.pareto_numbers == [4]
    page = render_report(analysis)
    assert "Best value_0 so far" in page
    assert page.count("Plotly.newPlot(") + page.count('<table class="data">') == len(SECTIONS)


@pytest.mark.integration  # the whole command, its analysis included, as test_analyze_command_prints_json
def test_report_command_writes_the_file(known_study, tmp_path, capsys):
    study_name, url = known_study
    study_file = write_study_file(tmp_path / "known.yaml", study_name, url)
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(study_file), "-o", str(out)]) == 0
    assert out.stat().st_size > 1_000_000 and str(out) in capsys.readouterr().out


def test_a_study_whose_space_changed_renders_and_names_the_mixed_versions(tmp_path):
    # resumed with --allow-changed-inputs after a parameter joined the space: early trials lack it (was a crash in
    # the parallel coordinates' log10(None))
    url = f"sqlite:///{tmp_path / 'changed.db'}"
    study = optuna.create_study(study_name="changed", storage=url, direction="minimize")
    lr = FloatDistribution(1e-4, 1e-2, log=True)
    beta = FloatDistribution(0.05, 1.0, log=True)
    for number in range(6):
        params, distributions = {"learning_rate": 1e-4 * 1.9 ** number}, {"learning_rate": lr}
        if number >= 3:
            params["beta"], distributions["beta"] = 0.1 * number, beta
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=float(number),
            user_attrs={"study_inputs": "v1" if number < 3 else "v2", "train_rows": 20, "eval_rows": 4,
                        "dataset_fingerprint": "fp-a" if number < 3 else "fp-b",
                        "training_config": {"data": {"source": "/data/pairs.jsonl"}}},
        ))
    analysis = analyze_study("changed", url)
    page = render_report(analysis)
    assert page.count("Plotly.newPlot(") + page.count('<table class="data">') == len(SECTIONS)
    assert any("mixed study inputs" in note and "v1: trials 0, 1, 2" in note for note in analysis.notes)
    assert any("mixed data" in note and "fp-b: trials 3, 4, 5" in note for note in analysis.notes)
    # the report names its data: source, pairs per split and fingerprint of each version
    assert "/data/pairs.jsonl (20 training / 4 validation pairs, fingerprint fp-a, 3 trials)" in page


def test_a_large_studys_gap_panels_show_the_pareto_trials_and_a_sample(known_analysis, monkeypatch):
    from sweeper.report import _figures

    monkeypatch.setattr(_figures, "MAX_GAP_DOTS", 12)
    figure = _figures.gap_versus_parameters(known_analysis)
    fitted = [t for t in known_analysis.completed if t.fit and t.fit.generalization_gap is not None]
    first_panel = [trace for trace in figure.data if trace.xaxis == "x"]
    shown = [int(re.match(r"trial (\d+)", text).group(1)) for trace in first_panel for text in trace.hovertext]
    assert len(shown) == 12 and set(known_analysis.pareto_numbers) <= set(shown)
    assert shown != sorted(t.number for t in fitted)[-12:]  # a sample of the rest, not the latest
    assert f"(12 of {len(fitted)} trials: the Pareto ones and a random sample of the rest)" in figure.layout.title.text


def test_the_hypervolume_history_is_drawn_as_its_steps(known_analysis):
    from sweeper.report import _figures

    history = known_analysis.hypervolume
    trace = _figures.hypervolume_history(known_analysis).data[0]
    assert trace.line.shape == "hv" and len(trace.x) < len(history.trial_numbers)
    for number, value in zip(history.trial_numbers, history.values):  # the step line passes through every value
        drawn = [y for x, y in zip(trace.x, trace.y) if x <= number][-1]
        assert drawn == value


@pytest.mark.slow
def test_a_report_of_1000_trials_stays_small_names_its_subsets_and_renders(tmp_path):
    from _known_study import build_known_study

    url = f"sqlite:///{tmp_path / 'large.db'}"
    build_known_study(url, "large", n_random=1000)
    analysis = analyze_study("large", url)
    page = render_report(analysis)
    completed = len(analysis.completed)
    assert len(page.encode()) < 8_000_000  # 8.7 MB before (hover text of every trial in every panel)
    assert f"1000 of {completed} completed trials" in page  # parallel coordinates: the Pareto ones, then the latest
    assert f"150 of {completed} completed trials" in page  # the fit table
    attributes = _probed(page, tmp_path)
    assert json.loads(attributes["errors"].replace("&quot;", '"')) == []
    assert attributes["drawn"].split(",") == [f"figure-{i}" for i in range(len(SECTIONS))]
