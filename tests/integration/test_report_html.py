"""The report's HTML opened in a real headless Chromium: every checklist item and every chart
renders, the page makes no network request, runs no script, logs no error, and prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from backstop import report, report_html
from backstop.report_model import Period, Report
from backstop.store import open_store
from tests.integration import browser, year

pytestmark = pytest.mark.skipif(browser.chromium() is None,
                                reason="chromium is absent (Debian package chromium)")

PROBE = """(() => ({
  items: [...document.querySelectorAll('section.item')].map(s => ({
    id: s.id, status: s.dataset.status, height: s.getBoundingClientRect().height,
    evidence: s.querySelectorAll('ul.evidence li').length})),
  rows: document.querySelectorAll('#checklist tbody tr').length,
  charts: [...document.querySelectorAll('figure.chart svg')].map(svg => {
    const box = svg.getBoundingClientRect();
    const bars = [...svg.querySelectorAll('rect.bar')];
    return {width: box.width, height: box.height, bars: bars.length,
            drawn: bars.filter(b => b.getBoundingClientRect().height > 0).length,
            red: bars.filter(b => b.getAttribute('fill') === '#c62828').length,
            limit: svg.querySelectorAll('line.limit').length};
  }),
  scripts: document.scripts.length,
  overall: document.getElementById('overall').textContent,
}))()"""


@pytest.fixture(scope="module")
def faulty_report(faulty_store: Path) -> Report:
    period = Period.month(year.MONTH, now=year.REPORT_NOW)
    return report.build(open_store(str(faulty_store)), year.SETTINGS, period,
                        now=year.REPORT_NOW, sources=report.Sources())


def test_every_item_and_chart_renders_offline_without_script(faulty_report: Report,
                                                              tmp_path: Path) -> None:
    page = tmp_path / "checklist.html"
    page.write_text(report_html.render(faulty_report))
    seen = browser.visit(page, PROBE)

    assert seen.requests == [page.resolve().as_uri()]
    assert seen.errors == []
    facts = seen.facts
    assert facts["scripts"] == 0 and facts["overall"] == "FAIL"
    assert facts["rows"] == len(faulty_report.items)
    assert [(i["id"], i["status"], i["evidence"]) for i in facts["items"]] == [
        (f"item-{i.id}", i.status, len(i.evidence)) for i in faulty_report.items]
    assert all(i["height"] > 0 for i in facts["items"])
    charts = [c for i in faulty_report.items for c in i.charts]
    assert len(facts["charts"]) == len(charts) == 3  # sizes, restore times, RPO gaps
    for drawn, chart in zip(facts["charts"], charts, strict=True):
        assert (drawn["width"], drawn["height"]) == (640, 170)
        assert drawn["bars"] == drawn["drawn"] == len(chart.points)
        assert drawn["red"] == sum(p[2] for p in chart.points)
        assert drawn["limit"] == (chart.limit is not None)
    assert seen.pdf.startswith(b"%PDF") and seen.pdf.count(b"/Type /Page") >= 2


def test_the_browser_check_sees_requests_and_script_errors(tmp_path: Path) -> None:
    """The check above can fail: a page that fetches and throws is caught doing both."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://example.invalid/x.png">'
                    '<script>throw new Error("boom")</script></body></html>')
    seen = browser.visit(page, "document.images.length")
    assert "http://example.invalid/x.png" in seen.requests
    assert any("boom" in error for error in seen.errors)
    assert seen.facts == 1
