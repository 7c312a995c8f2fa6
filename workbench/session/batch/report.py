"""A batch run as a report: each item's prompt with every model's answer beside it, and each model's totals.

Three forms of one ``BatchReport``: JSON (``{"models": [...], "short_names": {...}, "categories": [...],
"items": [{"id", "prompt", "answers": [...]}], "judges": [...]}``), Markdown, and one self-contained HTML
file. Markdown and HTML open with a table of contents, name each model by a short name (a folder's or
repository's last part; more of it where two would read the same) with the full ids in a legend, and sum
each category up: answers, mean tokens, and each judge's win rate on its items.

The report reads a run as it is on disk, so a run still going, or killed, is reported as far as it got; the
same goes for its judges (``judge.py``): each judge's win rates against the baseline, its consistency across
the swap, its unparseable replies, and every judgement with the judge's raw reply.

The HTML shows text from models, which may hold anything: every piece is escaped (``html.escape``), control
characters are made visible, the page loads nothing and a Content-Security-Policy forbids it any script.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zhbench.engines.types import stats_summary
from zhbench.plain.safe_text import json_text, literal_markdown, literal_quote, visible_text
from zhbench.workbench.session.batch.judge import JudgeLog, JudgementRecord, read_judge_logs
from zhbench.workbench.session.batch.judge_results import PairResult, pair_results
from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.report_formats import REPORT_FORMATS
from zhbench.workbench.session.batch.store import AnswerRecord, RunLog, read_run


@dataclass(frozen=True)
class ModelTotals:
    """One model's figures over the run: what a reader compares first."""

    model: str
    family: str | None
    answers: int
    failures: int
    #: items × repeats the run wants of it, answered or not
    expected: int
    mean_chars: float | None
    mean_tokens: float | None
    mean_ttft_s: float | None
    #: new tokens over generation time, all its answers together
    tokens_per_s: float | None
    load_error: str | None = None
    random_weights: bool = False
    #: the model file's quantization and sha256, where its engine reported them (a GGUF file)
    quantization: str | None = None
    sha256: str | None = None

    def file_facts(self) -> str:
        """``Q8_0, sha256 HEX`` for a GGUF file: what the legend adds to the model's id (empty for others)."""
        parts = [self.quantization, f"sha256 {self.sha256}" if self.sha256 else None]
        return ", ".join(part for part in parts if part)

    def to_json(self) -> dict[str, Any]:
        data = {
            "model": self.model,
            "family": self.family,
            "answers": self.answers,
            "failures": self.failures,
            "expected": self.expected,
            "mean_chars": self.mean_chars,
            "mean_tokens": self.mean_tokens,
            "mean_ttft_s": self.mean_ttft_s,
            "tokens_per_s": self.tokens_per_s,
            "load_error": self.load_error,
            "random_weights": self.random_weights,
        }
        facts = {"quantization": self.quantization, "sha256": self.sha256}
        return data | {key: value for key, value in facts.items() if value is not None}


@dataclass(frozen=True)
class CategoryModel:
    """One model's figures on one category's items."""

    model: str
    answers: int
    mean_tokens: float | None
    #: each judge's win rate of the model against its baseline on these items, in the report's judge order
    #: (None: no verdict there, or the model is that judge's baseline)
    win_rates: tuple[float | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "answers": self.answers,
            "mean_tokens": self.mean_tokens,
            "win_rates": list(self.win_rates),
        }


@dataclass(frozen=True)
class CategorySummary:
    """A category of the set (``-`` for items with none): its items and each model's figures on them."""

    category: str
    items: int
    models: tuple[CategoryModel, ...]

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "items": self.items, "models": [m.to_json() for m in self.models]}


@dataclass(frozen=True)
class JudgeReport:
    """One judge's judgements of the run and what they add up to."""

    log: JudgeLog
    results: tuple[PairResult, ...]

    @property
    def judge(self) -> str:
        return self.log.setup.judge

    def judgements_of(self, item: PromptItem) -> list[JudgementRecord]:
        """The item's judgements, by model, baseline, repeat and order."""
        found = (record for record in self.log.judgements.values() if record.item == item.id)
        return sorted(found, key=lambda record: record.key)


@dataclass(frozen=True)
class BatchReport:
    """A run read back and laid out item by item, models in the run's order."""

    folder: Path
    log: RunLog
    models: tuple[ModelTotals, ...]
    judges: tuple[JudgeReport, ...] = ()
    categories: tuple[CategorySummary, ...] = ()

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(totals.model for totals in self.models)

    @property
    def short_names(self) -> dict[str, str]:
        """Each model's short name (``short_names``)."""
        return short_names(self.model_names)

    def answers_to(self, item: PromptItem) -> list[AnswerRecord]:
        """The item's answers (and failures), by model in the run's order, then by repeat."""
        settings = self.log.settings
        found = (
            self.log.answers.get((model, item.id, repeat))
            for model in self.model_names
            for repeat in range(settings.repeat)
        )
        return [record for record in found if record is not None]


def build_report(folder: Path, *, bootstrap_rounds: int = 1000, bootstrap_seed: int = 0) -> BatchReport:
    log = read_run(folder)
    judges = tuple(
        JudgeReport(judge, tuple(pair_results(judge, rounds=bootstrap_rounds, seed=bootstrap_seed)))
        for judge in read_judge_logs(folder)
    )
    totals = tuple(_totals(log, model) for model in log.settings.models)
    return BatchReport(folder, log, totals, judges, _categories(log, judges))


def short_names(models: Sequence[str]) -> dict[str, str]:
    """A short name for each model id: its last part (``/models/Qwen2.5-0.5B`` and ``Qwen/Qwen2.5-0.5B`` are
    ``Qwen2.5-0.5B``, ``local/qwen`` is ``qwen``), with as many parts before it as make it differ from the
    others' (``a/model``, ``b/model``)."""
    parts = {model: [part for part in model.replace("\\", "/").split("/") if part] or [model] for model in models}
    names: dict[str, str] = {}
    for model in models:
        for taken in range(1, len(parts[model]) + 1):
            name = "/".join(parts[model][-taken:])
            if all(other == model or "/".join(parts[other][-taken:]) != name for other in models):
                break
        names[model] = name if name else model
    return names


def _categories(log: RunLog, judges: Sequence[JudgeReport]) -> tuple[CategorySummary, ...]:
    """Each category's items and every model's answers, mean tokens and judges' win rates on them."""
    by_category: dict[str, set[str]] = {}
    for item in log.settings.items:
        by_category.setdefault(item.category or "-", set()).add(item.id)
    summaries = []
    for category, items in by_category.items():
        rates = []
        for judge in judges:
            judged = {key: r for key, r in judge.log.judgements.items() if r.item in items}
            results = pair_results(replace(judge.log, judgements=judged), rounds=0)
            rates.append({result.model: result.win_rate for result in results})
        rows = []
        for model in log.settings.models:
            answers = [r for key, r in log.answers.items() if key[0] == model and key[1] in items and not r.failed]
            tokens = [_new_tokens(record) for record in answers]
            win_rates = tuple(rate.get(model) for rate in rates)
            rows.append(CategoryModel(model, len(answers), statistics.fmean(tokens) if tokens else None, win_rates))
        summaries.append(CategorySummary(category, len(items), tuple(rows)))
    return tuple(summaries)


def _new_tokens(record: AnswerRecord) -> int:
    return int((record.message.stats or {}).get("new_tokens", 0))


def _totals(log: RunLog, model: str) -> ModelTotals:
    records = [record for key, record in log.answers.items() if key[0] == model]
    answers = [record for record in records if not record.failed]
    stats = [record.message.stats or {} for record in answers]
    ttfts = [float(s["ttft_s"]) for s in stats if isinstance(s.get("ttft_s"), (int, float))]
    tokens = [_new_tokens(record) for record in answers]
    seconds = sum(float(s.get("total_s", 0.0)) for s in stats)
    failure = log.load_failures.get(model)
    pane = log.models.get(model)
    return ModelTotals(
        model=model,
        family=pane.family if pane else next((r.message.family for r in records if r.message.family), None),
        answers=len(answers),
        failures=len(records) - len(answers),
        expected=len(log.settings.items) * log.settings.repeat,
        mean_chars=statistics.fmean(len(r.message.content) for r in answers) if answers else None,
        mean_tokens=statistics.fmean(tokens) if tokens else None,
        mean_ttft_s=statistics.fmean(ttfts) if ttfts else None,
        tokens_per_s=sum(tokens) / seconds if seconds > 0 else None,
        load_error=failure.error if failure else None,
        random_weights=bool(pane and pane.random_weights),
        quantization=pane.quantization if pane else None,
        sha256=pane.sha256 if pane else None,
    )


# --- JSON ---------------------------------------------------------------------------------------


def report_json(report: BatchReport) -> dict[str, Any]:
    settings = report.log.settings
    return {
        "folder": str(report.folder),
        "source": settings.source,
        "options": dict(settings.options),
        "repeat": settings.repeat,
        "seed": settings.seed,
        "damaged_lines": report.log.damaged_lines,
        "models": [totals.to_json() for totals in report.models],
        "short_names": report.short_names,
        "categories": [summary.to_json() for summary in report.categories],
        "items": [
            {
                **item.to_json(),
                "prompt": item.prompt,
                "answers": [_answer_json(record) for record in report.answers_to(item)],
            }
            for item in settings.items
        ],
        "judges": [_judge_json(judge) for judge in report.judges],
    }


def _judge_json(judge: JudgeReport) -> dict[str, Any]:
    setup = judge.log.setup
    return {
        "judge": setup.judge,
        "file": judge.log.path.name,
        "prompt": setup.prompt.name,
        "options": dict(setup.options),
        "created": setup.created,
        "damaged_lines": judge.log.damaged_lines,
        "results": [result.to_json() for result in judge.results],
        "judgements": [
            {
                "item": record.item,
                "repeat": record.repeat,
                "model": record.model,
                "baseline": record.baseline,
                "shown": {"A": record.shown[0], "B": record.shown[1]},
                "verdict": record.verdict,
                "model_side": record.model_side(),
                "raw": record.message.content,
                "reasoning": record.message.reasoning,
                "error": record.message.error,
                "seed": record.seed,
                "stats": record.message.stats,
            }
            for record in sorted(judge.log.judgements.values(), key=lambda record: record.key)
        ],
    }


def _answer_json(record: AnswerRecord) -> dict[str, Any]:
    message = record.message
    return {
        "model": record.model,
        "repeat": record.repeat,
        "seed": record.seed,
        "text": message.content,
        "reasoning": message.reasoning,
        "chars": len(message.content),
        "stats": message.stats,
        "error": message.error,
        "family": message.family,
        "time": message.time,
    }


def report_json_text(report: BatchReport) -> str:
    """The JSON report, every character that could act on a terminal written as an escape."""
    return json_text(report_json(report), indent=2) + "\n"


# --- Markdown -----------------------------------------------------------------------------------


def report_markdown(report: BatchReport) -> str:
    settings = report.log.settings
    out = [f"# zhbench batch: {literal_markdown(settings.source)}", ""]
    out += [
        f"{_run_size(report)}, run seed {settings.seed}, started {literal_markdown(settings.created)}.",
        "",
    ]
    out += _markdown_contents(report)
    out += ['<a id="models"></a>', "", "## Models", ""]
    out += _markdown_totals(report)
    out += _markdown_legend(report)
    out += _markdown_categories(report)
    for number, judge in enumerate(report.judges, 1):
        out += [f'<a id="judge-{number}"></a>', ""]
        out += _markdown_judge(judge)
    for number, item in enumerate(settings.items, 1):
        category = f" · {literal_markdown(item.category)}" if item.category else ""
        out += [f'<a id="item-{number}"></a>', "", f"## {literal_markdown(item.id)}{category}", ""]
        for message in item.messages:
            who = "**User**" if message["role"] == "user" else "**Assistant** (given)"
            out += [f"{who}:", "", literal_quote(message["content"]), ""]
        if item.reference:
            out += ["*Reference:*", "", literal_quote(item.reference), ""]
        answers = report.answers_to(item)
        if not answers:
            out += ["*Not answered yet.*", ""]
        for record in answers:
            out += _markdown_answer(record, settings.repeat > 1, report.short_names)
        for judge in report.judges:
            verdicts = [_verdict_line(record) for record in judge.judgements_of(item)]
            if verdicts:
                out += [f"*Judge {literal_markdown(judge.judge)}:*", ""]
                out += [f"- {literal_markdown(line)}" for line in verdicts] + [""]
    return "\n".join(out).rstrip() + "\n"


def _markdown_contents(report: BatchReport) -> list[str]:
    """Links to the summaries, each judge, and every item (grouped by category)."""
    out = ["## Contents", "", "- [Models](#models) · [legend](#legend) · [by category](#categories)"]
    out += [f"- [Judge: {literal_markdown(j.judge)}](#judge-{n})" for n, j in enumerate(report.judges, 1)]
    for category, numbered in _items_by_category(report):
        links = ", ".join(f"[{literal_markdown(item.id)}](#item-{number})" for number, item in numbered)
        out.append(f"- {literal_markdown(category)}: {links}")
    return [*out, ""]


def _markdown_legend(report: BatchReport) -> list[str]:
    out = ['<a id="legend"></a>', "", "Legend:", ""]
    out += [f"- **{literal_markdown(short)}**: {literal_markdown(full)}" for full, short in _legend(report)]
    return [*out, ""]


def _legend(report: BatchReport) -> list[tuple[str, str]]:
    """(what names the model in full: its id, and its file's quantization and sha256 where known; its short
    name), in the run's order."""
    shorts = report.short_names
    return [(f"{t.model} ({t.file_facts()})" if t.file_facts() else t.model, shorts[t.model]) for t in report.models]


def _markdown_categories(report: BatchReport) -> list[str]:
    header = _category_header(report)
    out = ['<a id="categories"></a>', "", "## By category", ""]
    out += ["| " + " | ".join(header) + " |", "|---|---" + "|---:" * (len(header) - 2) + "|"]
    for cells in _category_rows(report):
        category, model, *figures = cells
        out.append("| " + " | ".join([literal_markdown(category), literal_markdown(model), *figures]) + " |")
    return [*out, ""]


def _markdown_judge(judge: JudgeReport) -> list[str]:
    out = [
        f"## Judge: {literal_markdown(judge.judge)}",
        "",
        f"Prompt: {literal_markdown(judge.log.setup.prompt.name)}.",
    ]
    out += ["", "| " + " | ".join(_JUDGE_HEADER) + " |", "|---|---" + "|---:" * (len(_JUDGE_HEADER) - 2) + "|"]
    for result in judge.results:
        model, baseline, *figures = _judge_cells(result)
        out.append("| " + " | ".join([literal_markdown(model), literal_markdown(baseline), *figures]) + " |")
    return [*out, ""]


def _markdown_totals(report: BatchReport) -> list[str]:
    out = ["| " + " | ".join(_TOTALS_HEADER) + " |", "|---" + "|---:" * (len(_TOTALS_HEADER) - 1) + "|"]
    for t in report.models:
        title, *figures = _totals_cells(t, report.short_names)  # only the title is text from outside
        out.append("| " + " | ".join([literal_markdown(title), *figures]) + " |")
    out.append("")
    for t in report.models:
        if t.load_error:
            out += [f"- **{literal_markdown(t.model)}** could not run: {literal_markdown(t.load_error)}"]
    if any(t.load_error for t in report.models):
        out.append("")
    if report.log.damaged_lines:
        out += [f"*{report.log.damaged_lines} damaged lines of the answers file were skipped.*", ""]
    return out


def _markdown_answer(record: AnswerRecord, repeated: bool, names: dict[str, str]) -> list[str]:
    message = record.message
    repeat = f" (repeat {record.repeat + 1})" if repeated else ""
    out = [f"### {literal_markdown(names.get(record.model, record.model))}{repeat}", ""]
    if message.reasoning:
        out += ["*Thinking:*", "", literal_quote(message.reasoning), "", "*Answer:*", ""]
    out.append(literal_quote(message.content))
    out += ["", f"<sub>{len(message.content)} characters · {_stats_line(record)}</sub>", ""]
    if message.error:
        out += [f"> failed: {literal_markdown(message.error)}", ""]
    return out


# --- HTML ---------------------------------------------------------------------------------------

#: fonts with Chinese glyphs on each system, most common first, so a page opened where the default font has
#: none still finds one the system has (macOS, Windows, Linux desktops, Android), before the generic family
CJK_FONTS = (
    'system-ui, -apple-system, "Segoe UI", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", '
    '"Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "WenQuanYi Micro Hei", "Droid Sans Fallback", '
    '"SimHei", "SimSun", sans-serif'
)

_STYLE = """
body { font-family: CJK_FONTS;
       margin: 2rem auto; max-width: 110rem; padding: 0 1rem; color: #1d232a; background: #fafafa; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
section.item { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin: 1.2rem 0; padding: 1rem; }
.category { color: #57606a; font-weight: normal; font-size: .9rem; }
.turn { white-space: pre-wrap; margin: .3rem 0; } .turn b { color: #57606a; }
.reference { white-space: pre-wrap; color: #1a7f37; margin: .3rem 0; }
.answers { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: .8rem; margin-top: .8rem; }
.answer { border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem; background: #f6f8fa; }
.answer h3 { font-size: .95rem; margin: 0 0 .4rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
.stats { color: #57606a; font-size: .8rem; margin-top: .5rem; }
.error { color: #cf222e; white-space: pre-wrap; }
details { margin-bottom: .4rem; color: #57606a; } details .text { font-size: .9rem; }
.missing { color: #57606a; font-style: italic; }
nav ul { margin: .3rem 0; padding-left: 1.2rem; } nav li { margin: .15rem 0; }
""".replace("CJK_FONTS", CJK_FONTS)

#: the page may show inline styles and nothing else: no script runs, nothing is fetched, whatever slips through
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"


def report_html(report: BatchReport) -> str:
    settings = report.log.settings
    title = f"zhbench batch: {settings.source}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{_escape(title)}</h1>",
        f"<p>{_run_size(report)} · run seed {settings.seed} · started {_escape(settings.created)}</p>",
        _html_contents(report),
        '<h2 id="models">Models</h2>',
        _html_totals(report),
        _html_legend(report),
        _html_categories(report),
    ]
    out += [_html_judge(judge, number) for number, judge in enumerate(report.judges, 1)]
    for number, item in enumerate(settings.items, 1):
        out.append(_html_item(report, item, number))
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_contents(report: BatchReport) -> str:
    """Links to the summaries, each judge, and every item (grouped by category)."""
    out = [
        "<nav><h2>Contents</h2><ul>",
        '<li><a href="#models">Models</a> · <a href="#legend">legend</a> · <a href="#categories">by category</a></li>',
    ]
    out += [f'<li><a href="#judge-{n}">评审 {_escape(j.judge)}</a></li>' for n, j in enumerate(report.judges, 1)]
    for category, numbered in _items_by_category(report):
        links = ", ".join(f'<a href="#item-{number}">{_escape(item.id)}</a>' for number, item in numbered)
        out.append(f"<li>{_escape(category)}: {links}</li>")
    out.append("</ul></nav>")
    return "\n".join(out)


def _html_legend(report: BatchReport) -> str:
    rows = [f"<li><b>{_escape(short)}</b>: {_escape(full)}</li>" for full, short in _legend(report)]
    return "\n".join(['<div id="legend">Legend:<ul>', *rows, "</ul></div>"])


def _html_categories(report: BatchReport) -> str:
    rows = ['<h2 id="categories">By category</h2>', "<table>"]
    rows.append("<tr>" + "".join(f"<th>{_escape(name)}</th>" for name in _category_header(report)) + "</tr>")
    for cells in _category_rows(report):
        rows.append("<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in cells) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _html_totals(report: BatchReport) -> str:
    rows = ["<table>", "<tr>" + "".join(f"<th>{name}</th>" for name in _TOTALS_HEADER) + "</tr>"]
    for t in report.models:
        cells = _totals_cells(t, report.short_names)
        rows.append("<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in cells) + "</tr>")
    rows.append("</table>")
    for t in report.models:
        if t.load_error:
            rows.append(f'<p class="error">{_escape(t.model)} could not run: {_escape(t.load_error)}</p>')
    if report.log.damaged_lines:
        rows.append(f"<p>{report.log.damaged_lines} damaged lines of the answers file were skipped.</p>")
    return "\n".join(rows)


def _html_item(report: BatchReport, item: PromptItem, number: int) -> str:
    category = f' <span class="category">{_escape(item.category)}</span>' if item.category else ""
    out = [f'<section class="item" id="item-{number}">', f"<h2>{_escape(item.id)}{category}</h2>"]
    for message in item.messages:
        who = "用户" if message["role"] == "user" else "助手（给定）"
        out.append(f'<div class="turn"><b>{who}：</b>{_escape(message["content"])}</div>')
    if item.reference:
        out.append(f'<div class="reference"><b>参考：</b>{_escape(item.reference)}</div>')
    out.append('<div class="answers">')
    answers = report.answers_to(item)
    if not answers:
        out.append('<p class="missing">not answered yet</p>')
    repeated = report.log.settings.repeat > 1
    for record in answers:
        out.append(_html_answer(record, repeated, report.short_names))
    out.append("</div>")
    for judge in report.judges:
        for judgement in judge.judgements_of(item):
            summary = f"评审 {judge.judge} · {_verdict_line(judgement)}"
            raw = f'<div class="text">{_escape(judgement.message.content)}</div>'
            out.append(f'<details class="judgement"><summary>{_escape(summary)}</summary>{raw}</details>')
    out.append("</section>")
    return "\n".join(out)


def _html_judge(judge: JudgeReport, number: int) -> str:
    rows = [
        f'<h2 id="judge-{number}">评审 (judge): {_escape(judge.judge)}</h2>',
        f"<p>prompt: {_escape(judge.log.setup.prompt.name)}</p>",
        "<table>",
        "<tr>" + "".join(f"<th>{name}</th>" for name in _JUDGE_HEADER) + "</tr>",
    ]
    for result in judge.results:
        rows.append("<tr>" + "".join(f"<td>{_escape(cell)}</td>" for cell in _judge_cells(result)) + "</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _html_answer(record: AnswerRecord, repeated: bool, names: dict[str, str]) -> str:
    message = record.message
    repeat = f" · repeat {record.repeat + 1}" if repeated else ""
    out = ['<div class="answer">', f"<h3>{_escape(names.get(record.model, record.model))}{repeat}</h3>"]
    if message.reasoning:
        thinking = f'<div class="text">{_escape(message.reasoning)}</div>'
        out.append(f"<details><summary>思考过程</summary>{thinking}</details>")
    out.append(f'<div class="text">{_escape(message.content)}</div>')
    if message.error:
        out.append(f'<div class="error">failed: {_escape(message.error)}</div>')
    out.append(f'<div class="stats">{len(message.content)} characters · {_escape(_stats_line(record))}</div>')
    out.append("</div>")
    return "\n".join(out)


def _escape(text: str) -> str:
    """Text as HTML that shows exactly it: markup escaped (quotes too), control characters made visible."""
    return html.escape(visible_text(text), quote=True)


# --- shared -------------------------------------------------------------------------------------


def _stats_line(record: AnswerRecord) -> str:
    stats = record.message.stats
    return f"{stats_summary(stats)} · seed {record.seed}" if stats else f"no stats · seed {record.seed}"


def _run_size(report: BatchReport) -> str:
    repeat = report.log.settings.repeat
    size = f"{len(report.log.settings.items)} items × {len(report.models)} models"
    return size + (f" × {repeat} repeats" if repeat > 1 else "")


#: the columns of the per-model table, in Markdown and HTML alike
_TOTALS_HEADER = ("model", "answers", "failures", "mean characters", "mean tokens", "first token", "tokens/s")


def _totals_cells(t: ModelTotals, names: dict[str, str]) -> list[str]:
    return [
        _model_title(t, names),
        f"{t.answers}/{t.expected}",
        str(t.failures),
        _number(t.mean_chars),
        _number(t.mean_tokens),
        _seconds(t.mean_ttft_s),
        _number(t.tokens_per_s),
    ]


#: the columns of a judge's table, in Markdown and HTML alike
_JUDGE_HEADER = ("model", "baseline", "win rate", "95% interval", "W/T/L", "consistency", "unparseable", "failed")


def _judge_cells(result: PairResult) -> list[str]:
    interval = "–" if result.ci_low is None else f"{result.ci_low:.1%} – {result.ci_high:.1%}"
    consistency = "–" if result.consistency is None else f"{result.consistency:.0%} of {result.both_orders}"
    return [
        result.model,
        result.baseline,
        "–" if result.win_rate is None else f"{result.win_rate:.1%}",
        interval,
        f"{result.wins}/{result.ties}/{result.losses}",
        consistency,
        str(result.unparseable),
        str(result.failed),
    ]


def _verdict_line(record: JudgementRecord) -> str:
    """One judgement in a line: who was shown as A and B, and the verdict (or why there is none)."""
    if record.failed:
        verdict = f"failed: {record.message.error}"
    else:
        verdict = f"[[{record.verdict}]]" if record.verdict else "unparseable (no verdict mark)"
    return f"A: {record.shown[0]}, B: {record.shown[1]} (repeat {record.repeat + 1}) → {verdict}"


def _model_title(totals: ModelTotals, names: dict[str, str]) -> str:
    parts = [totals.family] if totals.family else []
    if totals.random_weights:
        parts.append("random weights")
    name = names.get(totals.model, totals.model)
    return f"{name} ({', '.join(parts)})" if parts else name


def _items_by_category(report: BatchReport) -> list[tuple[str, list[tuple[int, PromptItem]]]]:
    """The items numbered in the set's order (their anchors), grouped by category in order of appearance."""
    groups: dict[str, list[tuple[int, PromptItem]]] = {}
    for number, item in enumerate(report.log.settings.items, 1):
        groups.setdefault(item.category or "-", []).append((number, item))
    return list(groups.items())


def _category_header(report: BatchReport) -> list[str]:
    """The per-category table's columns: a win-rate column per judge (named by its short name)."""
    judges = [f"win rate ({short_names([j.judge for j in report.judges])[j.judge]})" for j in report.judges]
    return ["category", "model", "items", "answers", "mean tokens", *judges]


def _category_rows(report: BatchReport) -> list[list[str]]:
    names = report.short_names
    return [
        [
            summary.category,
            names.get(row.model, row.model),
            str(summary.items),
            str(row.answers),
            _number(row.mean_tokens),
            *("–" if rate is None else f"{rate:.1%}" for rate in row.win_rates),
        ]
        for summary in report.categories
        for row in summary.models
    ]


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def render(report: BatchReport, form: str) -> str:
    """The report in one of ``REPORT_FORMATS``."""
    if form not in REPORT_FORMATS:
        raise ValueError(f"unknown report format {form!r} (known: {', '.join(REPORT_FORMATS)})")
    return REPORT_FORMATS[form].write(report)
