"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no script,
no external resource (its Content-Security-Policy forbids any), readable offline and printable.
"""

from __future__ import annotations

from html import escape

from backstop.report_model import Chart, Item, Report

WIDTH, HEIGHT, PAD, LEFT = 640, 170, 24, 60  # LEFT: room for the axis label
COLOURS = {"PASS": "#1a7f37", "FAIL": "#c62828", "DUE": "#9a6700", "INFO": "#57606a"}
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;margin:2em auto;
max-width:60em;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;margin:0 0 .3em}
.meta{color:#57606a;margin:0 0 1em}
.badge{display:inline-block;min-width:3.5em;text-align:center;border-radius:3px;color:#fff;
font-weight:600;padding:0 .4em;margin-right:.5em}
table{border-collapse:collapse;width:100%;margin:1em 0}
td,th{border-bottom:1px solid #d0d7de;padding:.3em .5em;text-align:left;vertical-align:top}
section.item{border:1px solid #d0d7de;border-radius:6px;padding:.8em 1em;margin:1em 0;
break-inside:avoid}
ul.evidence{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;padding-left:1.2em;
margin:.5em 0;overflow-wrap:anywhere}
figure.chart{margin:.6em 0}figcaption{font-size:12px;color:#57606a}
svg text{font:10px system-ui,sans-serif;fill:#57606a}
@media print{body{margin:0;max-width:none}section.item{page-break-inside:avoid}
.badge{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def render(report: Report) -> str:
    counts = {s: sum(i.status == s for i in report.items) for s in COLOURS}
    rows = "".join(
        f'<tr><td><a href="#item-{escape(i.id)}">{escape(i.title)}</a></td>'
        f"<td>{_badge(i.status)}</td><td>{escape(i.summary)}</td></tr>" for i in report.items)
    sections = "".join(_item(i) for i in report.items)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>Backstop checklist {escape(report.period.label)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<h1>Backup verification checklist {escape(report.period.label)} '
        f'<span class="badge" id="overall" style="background:{COLOURS[report.status]}">'
        f"{report.status}</span></h1>"
        f'<p class="meta">Store {escape(report.store)} &middot; period '
        f"{report.period.start:%Y-%m-%d} to {report.period.until:%Y-%m-%d %H:%M} UTC &middot; "
        f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC &middot; "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + "</p>"
        '<table id="checklist"><thead><tr><th>Checklist item</th><th>Result</th>'
        f"<th>Summary</th></tr></thead><tbody>{rows}</tbody></table>"
        f"{sections}{_alarms(report)}{_settings(report)}</body></html>\n")


def _badge(status: str) -> str:
    return f'<span class="badge" style="background:{COLOURS[status]}">{status}</span>'


def _item(item: Item) -> str:
    evidence = "".join(f"<li>{escape(line)}</li>" for line in item.evidence)
    charts = "".join(_chart(c, f"chart-{item.id}-{n}") for n, c in enumerate(item.charts))
    return (f'<section class="item" id="item-{escape(item.id)}" data-status="{item.status}">'
            f"<h2>{_badge(item.status)}{escape(item.title)}</h2><p>{escape(item.summary)}</p>"
            + (f'<ul class="evidence">{evidence}</ul>' if evidence else "")
            + charts + "</section>")


def _chart(chart: Chart, id_: str) -> str:
    """Bars, one per point (out-of-bounds ones red), the limit as a dashed line."""
    values = [p[1] for p in chart.points]
    top = max([*values, chart.limit or 0, 1e-9]) * 1.1
    inner_w, inner_h = WIDTH - LEFT - PAD, HEIGHT - 2 * PAD
    step = inner_w / max(len(values), 1)

    def y(value: float) -> float:
        return PAD + inner_h * (1 - value / top)

    bars = []
    for n, (label, value, bad) in enumerate(chart.points):
        x = LEFT + n * step + step * 0.1
        colour = "#c62828" if bad else "#4a7bb7"
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{y(value):.1f}" '
                    f'width="{max(step * 0.8, 1):.1f}" height="{PAD + inner_h - y(value):.1f}" '
                    f'fill="{colour}"><title>{escape(label)}: {_value(value, chart.unit)}'
                    f"{' (out of bounds)' if bad else ''}</title></rect>")
    labels = [(0, chart.points[0][0]), (len(values) - 1, chart.points[-1][0])] \
        if chart.points else []
    axis = "".join(f'<text x="{LEFT + n * step + step / 2:.1f}" y="{HEIGHT - PAD + 14}" '
                   f'text-anchor="middle">{escape(label)}</text>' for n, label in labels)
    limit = ""
    if chart.limit is not None:
        ly = y(chart.limit)
        limit = (f'<line class="limit" x1="{LEFT}" x2="{WIDTH - PAD}" y1="{ly:.1f}" '
                 f'y2="{ly:.1f}" stroke="#c62828" stroke-dasharray="4 3"/>'
                 f'<text x="{WIDTH - PAD}" y="{ly - 3:.1f}" text-anchor="end">'
                 f"{escape(chart.limit_label)}</text>")
    return (f'<figure class="chart" id="{escape(id_)}"><svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(chart.title)}">'
            f'<line x1="{LEFT}" x2="{LEFT}" y1="{PAD}" y2="{HEIGHT - PAD}" stroke="#8c959f"/>'
            f'<line x1="{LEFT}" x2="{WIDTH - PAD}" y1="{HEIGHT - PAD}" y2="{HEIGHT - PAD}" '
            f'stroke="#8c959f"/><text x="{LEFT - 4}" y="{PAD + 4}" text-anchor="end">'
            f"{_value(top, chart.unit)}</text>"
            f'<text x="{LEFT - 4}" y="{HEIGHT - PAD}" text-anchor="end">0</text>'
            f"{''.join(bars)}{limit}{axis}</svg><figcaption>{escape(chart.title)}"
            "</figcaption></figure>")


def _value(value: float, unit: str) -> str:
    if unit == "bytes":
        for name in ("B", "KB", "MB", "GB"):
            if value < 1024 or name == "GB":
                return f"{value:.0f} {name}" if name == "B" else f"{value:.1f} {name}"
            value /= 1024
    return f"{value:.1f} {'min' if unit == 'minutes' else 'h'}"


def _alarms(report: Report) -> str:
    if report.alarms is None:
        body = ("<p>Not read here: the command line does not read CloudWatch; the monthly "
                "report in the bucket lists every alarm that fired.</p>")
    elif not report.alarms:
        body = "<p>No Backstop alarm went into ALARM in the period.</p>"
    else:
        body = ("<table><thead><tr><th>Alarm</th><th>Times</th><th>First</th><th>Last</th>"
                "<th>Now</th><th>Meaning</th></tr></thead><tbody>" + "".join(
                    f"<tr><td>{escape(a['name'])}</td><td>{a['entered']}</td>"
                    f"<td>{escape(a['first'][:16])}</td><td>{escape(a['last'][:16])}</td>"
                    f"<td>{escape(str(a['state_now']))}</td>"
                    f"<td>{escape(a['description'])}</td></tr>" for a in report.alarms)
                + "</tbody></table>")
    return f'<section id="alarms"><h2>Alarms in the period</h2>{body}</section>'


def _settings(report: Report) -> str:
    s = report.settings
    databases = ", ".join(f"{d.name} ({'/'.join(d.schedules) or 'no schedule'})"
                          for d in s.databases) or "every database in the store, daily"
    facts = [("Databases", databases), ("RPO", f"{s.rpo_hours:g} h"),
             ("RTO", f"{s.rto_minutes:g} min"), ("PITR RPO", f"{s.pitr_rpo_minutes:g} min"),
             ("Collapsed below", f"{s.collapsed_fraction:g} of the trend"),
             ("Retention (days)", ", ".join(f"{k} {v if v is not None else 'kept'}"
                                            for k, v in s.retention_days.items())),
             ("Replication", s.replication_bucket or "none"),
             ("Object Lock", "none" if not s.object_lock else
              f"{s.object_lock.get('mode')} {s.object_lock.get('days')} days"),
             ("Source", "the deployment's configuration" if s.declared else
              "defaults (no settings were given)")]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts)
    return f'<section id="settings"><h2>What was expected</h2><table>{rows}</table></section>'
