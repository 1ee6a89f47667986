"""One static HTML file for a run: statistics, schema, anomalies, training
curves, metrics, lineage and sample images per class.

Self-contained (images inline as data URIs, no script, no network): TFDV's
own get_statistics_html() loads Facets from the internet, which a CI box or an
air-gapped cluster cannot reach, so the charts here are plain HTML and CSS.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

from happysad.components.trainer import models
from happysad.pipeline import run_record, run_summary

SAMPLES_PER_CLASS = 8  # sample images shown per class (run_record.read_samples reads them)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#5b8def;height:1em;display:inline-block;vertical-align:middle}
.ok{color:#176b2c;font-weight:600}.bad{color:#b00020;font-weight:600}
.grid img{width:75px;height:75px;margin:2px;border:1px solid #ddd}
ul.lineage{font-family:monospace;font-size:12px}code{font-size:12px}
"""


def write(inspection: run_record.Inspection, path: Path) -> None:
    """Writes the report to path (atomically: a reader never sees half a page)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(inspection), encoding="utf-8")
    tmp.replace(path)


def render(inspection: run_record.Inspection) -> str:
    s = inspection.record
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8><title>happysad run {_e(s.run_id)}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>happysad run <code>{_e(s.run_id)}</code></h1>",
             _verdict(s), _components(s), _statistics(inspection.statistics), _schema(inspection),
             _anomalies(s), _training(s), _metrics(s), _samples(inspection.samples),
             "<h2>Lineage</h2><p>Each artefact, the execution that made it, and that execution's inputs.</p>",
             _lineage(inspection.lineage), "</body></html>"]
    return "\n".join(parts)


def _e(value) -> str:
    return html.escape(str(value))


def _table(headers, rows, numeric=(), table_id: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td class=num>{_e(c)}</td>" if i in numeric else f"<td>{c if isinstance(c, _Raw) else _e(c)}</td>"
        for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table{f' id={table_id}' if table_id else ''}><tr>{head}</tr>{body}</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _verdict(s) -> str:
    rejected = any(found for found in s.anomalies.values())
    if s.pushed_dir:
        card = s.model_card
        link = f' <a id=model-card href="{_e(Path(card).as_uri())}">model card</a>' if card else ""
        return (f"<p class=ok id=verdict>Blessed and pushed: <code>{_e(s.pushed_dir)}</code> "
                f"(version {_e(s.pushed_version)}){link}</p>")
    if rejected:
        return "<p class=bad id=verdict>Data rejected: the anomalies below stopped the run before training.</p>"
    if s.blessed is False:
        return "<p class=bad id=verdict>Not blessed: the model failed the gate; nothing was pushed.</p>"
    if s.serving_check and not s.serving_check["blessed"]:
        return ("<p class=bad id=verdict>Not pushed: TF Serving could not serve this model: "
                + _e("; ".join(s.serving_check["problems"])) + "</p>")
    return "<p id=verdict>Nothing pushed by this run.</p>"


def _components(s) -> str:
    return "<h2>Components</h2>" + _table(["component", "state", "seconds"],
                                          [(c.node_id, c.state, f"{c.seconds:.1f}") for c in s.components], {2})


def _statistics(stats) -> str:
    out = ["<h2>Data statistics</h2>"]
    for st in stats:
        out.append(f"<h3>{_e(st.split)}: {st.examples} examples</h3>")
        rows = [(name, count, f"{count / st.examples:.0%}" if st.examples else "",
                 _Raw(f'<span class=bar style="width:{200 * count / max(st.examples, 1):.0f}px"></span>'))
                for name, count in sorted(st.classes.items())]
        out.append(_table(["class", "examples", "share", ""], rows, {1, 2}))
        if st.image_bytes:
            b = st.image_bytes
            out.append(_table(["image bytes", "min", "mean", "max"],
                              [("encoded size", f"{b['min']:,.0f}", f"{b['mean']:,.0f}", f"{b['max']:,.0f}")], {1, 2, 3}))
        for key, title in (("sizes", "image size"), ("formats", "format"), ("modes", "colour mode")):
            if st.images.get(key):
                out.append(_table([title, "examples"], sorted(st.images[key].items()), {1}))
    return "\n".join(out) if stats else "<h2>Data statistics</h2><p>No statistics in this run.</p>"


def _schema(inspection) -> str:
    html = (f"<h2>Schema</h2><p>Curated: <code>{_e(inspection.schema_uri)}</code></p>"
            + _table(["feature", "type", "presence", "domain"], inspection.schema))
    if inspection.schema_diff:
        html += (f"<h3>Inferred by SchemaGen, against the curated schema</h3><p>The gate uses the curated "
                 f"schema; <code>happysad schema --promote FEATURE</code> adopts an inferred feature. Inferred: "
                 f"<code>{_e(inspection.inferred_schema_uri)}</code></p>"
                 + _table(["feature", "verdict", "curated", "inferred"],
                          [(n, v, c, i) for n, c, i, v in inspection.schema_diff], table_id="schema-diff"))
    return html


def _anomalies(s) -> str:
    rows = []
    for node, found in s.anomalies.items():
        if not found:
            rows.append((node, "", "", _Raw("<span class=ok>no anomalies</span>"), ""))
        rows.extend((node, a.split, a.feature, _Raw(f"<span class=bad>{_e(a.short)}</span>"), a.description)
                    for a in found)
    return "<h2>Anomalies</h2>" + (_table(["validator", "split", "feature", "anomaly", "details"], rows)
                                   if rows else "<p>No validator ran.</p>")


def _img(png: bytes, alt: str, css: str = "") -> str:
    return f'<img alt="{_e(alt)}" {css} src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _training(s) -> str:
    if not s.training:
        return "<h2>Training</h2><p>The Trainer did not run.</p>"
    t = s.training
    out = ["<h2>Training</h2>", _table(["model", "epochs run", "threshold epoch", "final accuracy",
                                        "final eval accuracy"],
                                       [(models.trained_architecture(t), t["epochs_run"], t["threshold_epoch"],
                                         f"{t['final_accuracy']:.4f}", f"{t['final_val_accuracy']:.4f}")],
                                       {1, 2, 3, 4})]
    if s.training_curves_png:
        out.append(_img(s.training_curves_png, "training curves", 'id=curves style="max-width:100%"'))
    return "\n".join(out)


def _metrics(s) -> str:
    if not s.metrics:
        return "<h2>Evaluation</h2><p>The Evaluator did not run.</p>"
    def num(value) -> str:
        return "" if value is None else f"{value:.4g}"

    rows = [("overall", num(s.metrics.get("example_count")), num(run_summary.accuracy(s.metrics)),
             num(s.metrics.get("auc")))]
    rows += [(name, num(v.get("example_count")), num(run_summary.accuracy(v)), "")
             for name, v in sorted(s.class_metrics.items())]
    verdict = ("<p class=ok>Blessed.</p>" if s.blessed else
               "<p class=bad>Not blessed:</p><ul>" + "".join(f"<li>{_e(r)}</li>" for r in s.failed_thresholds) + "</ul>")
    sources = run_summary.source_rows(s)
    by_source = "" if not sources else "<h3>By source</h3>" + _table(
        ["source", "examples", "accuracy", "gate"],
        [(name, count, num(acc), "trained on" if floor is None else
          f"held out: never trained on; needs >= {floor:g}" + (" - FAILED" if failed else ""))
         for name, count, acc, floor, failed in sources], {1, 2}, table_id="sources")
    # The same lines as `happysad inspect`: the TFLite model, the serving check, the spans.
    extra = "".join(f"<p id={key}>" + "<br>".join(_e(line) for line in lines) + "</p>"
                    for key, lines in (("tflite", run_summary.format_tflite(s)),
                                       ("serving-check", run_summary.format_serving_check(s)),
                                       ("spans", run_summary.format_spans(s))) if lines)
    return ("<h2>Evaluation (eval split)</h2>" + _table(["slice", "examples", "accuracy", "AUC"], rows, {1, 2, 3})
            + by_source + verdict + extra)


def _samples(samples) -> str:
    if samples is None:
        return ""
    out = ["<h2>Sample images (train split)</h2>"]
    for name, images in sorted(samples.items()):
        out.append(f"<h3>{_e(name)}</h3><div class=grid>" + "".join(_img(png, f) for f, png in images) + "</div>")
    return "\n".join(out)


def _lineage(nodes) -> str:
    if not nodes:
        return ""
    items = []
    for node in nodes:
        name = f"{_e(node.role)}: " if node.role else ""
        if node.seen_above:
            items.append(f"<li>{name}{_e(node.artifact_type)} {node.artifact_id} (above)</li>")
            continue
        made = f" &larr; {_e(node.producer)}" if node.producer else ""
        items.append(f"<li>{name}<b>{_e(node.artifact_type)} {node.artifact_id}</b>{made}: <code>{_e(node.uri)}</code>"
                     f"{_lineage(node.inputs)}</li>")
    return "<ul class=lineage>" + "".join(items) + "</ul>"
