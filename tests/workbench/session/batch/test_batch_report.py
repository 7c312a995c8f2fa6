"""The report: every model's answer beside the prompt, per-model totals, three formats, nothing executable."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser

from zhbench.workbench.session.batch.report import CJK_FONTS, build_report, render, report_json
from zhbench.workbench.session.batch.store import AnswerRecord, BatchStore, LoadFailureRecord
from zhbench.workbench.session.records import MessageRecord

HOSTILE = [
    "<script>alert(1)</script>",
    "</textarea><script>fetch('//evil')</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">点我</a><iframe src=//evil></iframe>',
    "<style>body{display:none}</style>\x1b[31m<!-- -->]]>",
]


def answer(model, item, text, *, reasoning=None, error=None, new_tokens=4, total_s=0.5):
    stats = {
        "prompt_tokens": 3,
        "new_tokens": new_tokens,
        "ttft_s": 0.1,
        "tokens_per_s": new_tokens / total_s,
        "total_s": total_s,
        "stop_reason": "error" if error else "eos",
    }
    message = MessageRecord(
        id=f"{model}-{item}",
        pane=model,
        turn=1,
        role="assistant",
        content=text,
        model=model,
        time="t",
        family="scripted",
        params={"seed": 1},
        stats=stats,
        error=error,
        partial=error is not None,
        reasoning=reasoning,
    )
    return AnswerRecord(item=item, repeat=0, seed=1, message=message)


def test_json_has_every_item_with_each_models_answer_and_the_totals(run_dir, make_settings):
    with BatchStore(run_dir, make_settings(["m1", "m2", "gone"], items=3)) as store:
        store.write(answer("m1", "q0", "一二三", new_tokens=3, total_s=1.0))
        store.write(answer("m2", "q0", "四五", reasoning="想一想", new_tokens=5, total_s=1.0))
        store.write(answer("m1", "q1", "", error="RuntimeError: boom"))
        store.write(LoadFailureRecord("gone", "t", "/models/gone: missing config.json"))
    data = report_json(build_report(run_dir))
    assert [m["model"] for m in data["models"]] == ["m1", "m2", "gone"]
    m1, m2, gone = data["models"]
    assert (m1["answers"], m1["failures"], m1["expected"], m1["mean_chars"]) == (1, 1, 3, 3.0)
    assert m2["tokens_per_s"] == 5.0 and gone["load_error"] == "/models/gone: missing config.json"
    first = data["items"][0]
    assert first["id"] == "q0" and first["prompt"] == "问题0" and first["category"] == "闲聊"
    assert [(a["model"], a["text"], a["chars"]) for a in first["answers"]] == [("m1", "一二三", 3), ("m2", "四五", 2)]
    assert first["answers"][1]["reasoning"] == "想一想" and first["answers"][0]["stats"]["new_tokens"] == 3
    assert data["items"][1]["answers"][0]["error"] == "RuntimeError: boom"
    assert data["items"][2]["answers"] == []  # not answered yet: the report reads a run part-way
    assert json.loads(render(build_report(run_dir), "json"))["items"][0]["id"] == "q0"


def test_markdown_shows_prompts_answers_stats_and_what_is_missing(run_dir, make_settings):
    with BatchStore(run_dir, make_settings(["m1"], items=2)) as store:
        store.write(answer("m1", "q0", "# 不是标题\n<b>x</b>", reasoning="先想"))
    text = render(build_report(run_dir), "md")
    assert "## q0 · 闲聊" in text and "> 问题0" in text and "> \\# 不是标题" in text and "\\<b\\>x\\</b\\>" in text
    assert "*Thinking:*" in text and "4 tokens" in text and "*Not answered yet.*" in text
    assert "| m1 (scripted) | 1/2 | 0 |" in text


class _Tags(HTMLParser):
    """Every tag and attribute a browser would build from the page, and its script and style text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def test_html_escapes_hostile_answers_and_folds_reasoning(run_dir, make_settings):
    with BatchStore(run_dir, make_settings(["<b>m</b>"], items=len(HOSTILE))) as store:
        for n, text in enumerate(HOSTILE):
            store.write(answer("<b>m</b>", f"q{n}", text, reasoning=HOSTILE[-1 - n], error=HOSTILE[n]))
    page = render(build_report(run_dir), "html")
    parser = _Tags()
    parser.feed(page)
    tags = {tag for tag, _ in parser.tags}
    page_tags = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "tr", "th", "td"}
    assert tags <= page_tags | {"section", "span", "div", "b", "details", "summary", "nav", "ul", "li", "a"}
    assert sum(tag == "style" for tag, _ in parser.tags) == 1  # ours only
    for _, attrs in parser.tags:
        for name, value in attrs:
            assert not name.startswith("on") and "javascript:" not in (value or "")
            assert name in {"lang", "charset", "http-equiv", "content", "name", "class", "id", "href"}
            assert name != "href" or (value or "").startswith("#")  # the contents link within the page only
    assert "http://" not in page and "https://" not in page and "//evil" in "".join(parser.text)
    shown = "".join(parser.text)
    for text in HOSTILE[:4]:
        assert text in shown  # shown as text, exactly
    assert "\\x1b[31m" in shown and "\x1b" not in page
    assert page.count("<details>") == len(HOSTILE) and "default-src 'none'" in page


def test_categories_short_names_legend_and_contents(run_dir, make_settings):
    models = ["/models/qwen/Qwen2.5-0.5B-Instruct", "/data/Qwen2.5-0.5B-Instruct", "local/glm-4-9b-chat"]
    settings = make_settings(models, items=4)
    items = tuple(
        replace(item, category="数学" if n % 2 else None) for n, item in enumerate(settings.items)
    )  # q1, q3 数学; q0, q2 none
    with BatchStore(run_dir, replace(settings, items=items)) as store:
        for model, tokens in zip(models, (2, 4, 6), strict=True):
            for item in ("q0", "q1", "q3"):
                store.write(answer(model, item, "答", new_tokens=tokens + (item == "q3") * 2))
    report = build_report(run_dir)
    assert report.short_names == {
        models[0]: "qwen/Qwen2.5-0.5B-Instruct",
        models[1]: "data/Qwen2.5-0.5B-Instruct",
        models[2]: "glm-4-9b-chat",
    }
    data = report_json(report)
    math = next(c for c in data["categories"] if c["category"] == "数学")
    assert math["items"] == 2 and [m["answers"] for m in math["models"]] == [2, 2, 2]
    assert [m["mean_tokens"] for m in math["models"]] == [3.0, 5.0, 7.0]
    none = next(c for c in data["categories"] if c["category"] == "-")
    assert none["items"] == 2 and [m["answers"] for m in none["models"]] == [1, 1, 1]
    text = render(report, "md")
    assert "- **glm-4-9b-chat**: local/glm-4-9b-chat" in text
    assert "| 数学 | qwen/Qwen2.5-0.5B-Instruct | 2 | 2 | 3.0 |" in text
    assert "- 数学: [q1](#item-2), [q3](#item-4)" in text and '<a id="item-4"></a>' in text
    assert "### glm-4-9b-chat" in text and "### local/glm-4-9b-chat" not in text
    page = render(report, "html")
    assert f"font-family: {CJK_FONTS};" in page and "Noto Sans CJK SC" in CJK_FONTS and "Microsoft YaHei" in CJK_FONTS
    assert '<a href="#item-2">q1</a>' in page and '<section class="item" id="item-2">' in page
    assert "<td>数学</td><td>glm-4-9b-chat</td><td>2</td><td>2</td><td>7.0</td>" in page


def test_a_format_added_to_the_registry_is_a_cli_choice_chosen_by_its_suffix_and_written_by_its_writer(
    run_dir, make_settings, monkeypatch, capsys, tmp_path
):
    """One table per output format (issue 28 item 5): registering a report format is the only edit needed."""
    from zhbench.workbench.cli import main
    from zhbench.workbench.session.batch.report_formats import REPORT_FORMATS
    from zhbench.workbench.session.output_formats import OutputFormat

    with BatchStore(run_dir, make_settings(["m1", "m2"], items=1)) as store:
        store.write(answer("m1", "q0", "一二三"))

    def models_line(report):
        return "models: " + ", ".join(totals.model for totals in report.models) + "\n"

    monkeypatch.setitem(REPORT_FORMATS, "txt", OutputFormat(models_line, (".txt",), "the models, one line"))
    assert main(["batch", "report", str(run_dir), "--format", "txt"]) == 0
    out, _ = capsys.readouterr()
    assert out == "models: m1, m2\n"
    assert main(["batch", "report", str(run_dir), "-o", str(tmp_path / "report.txt")]) == 0
    assert (tmp_path / "report.txt").read_text(encoding="utf-8") == "models: m1, m2\n"
    assert render(build_report(run_dir), "txt") == "models: m1, m2\n"
