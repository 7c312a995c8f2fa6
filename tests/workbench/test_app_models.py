"""The model list in the real app: fit marks, a download from a dimmed row or of a typed hub id, and a rescan."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from app_driver import models_loaded, wait_until

from tests.engines.hub.conftest import REPO, fake_hub, repo_folder  # noqa: F401  # the fake hub's fixtures
from tests.engines.hub.fake_hub import FakeHub
from zhbench.engines.registry import write_standin
from zhbench.widgets.composer import Composer
from zhbench.widgets.model_list import ModelList, ModelTable
from zhbench.widgets.question import QuestionDialog
from zhbench.workbench.app import ZhbenchApp
from zhbench.workbench.session.config import Config

SIZE = (150, 40)


def row_of(app: ZhbenchApp, model_id: str):
    return next(row for row in app.rows if row.id == model_id)


async def find(pilot, app: ZhbenchApp, text: str) -> None:
    """Type ``text`` into the filter and go to the list."""
    await pilot.press("ctrl+f", *text, "enter")
    assert isinstance(app.focused, ModelTable)


async def test_a_dimmed_catalog_model_downloads_from_its_row_and_then_loads(
    make_app: Callable[..., ZhbenchApp],
    fake_hub: FakeHub,  # noqa: F811
) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")
        assert not row_of(app, REPO).available
        await find(pilot, app, "dialogbot-base")
        await pilot.press("a")  # not here yet: says how to get it, loads nothing
        assert any("press d on its row" in n.message for n in app._notifications)
        await pilot.press("d")  # asks first: a letter typed in the list must not start a download
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        assert f"Download {REPO}?" in app.screen.title_text
        await pilot.press("escape")
        await pilot.pause()
        assert not fake_hub.gets("model.safetensors")  # cancelled: nothing fetched
        await pilot.press("d")
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("enter")  # Download is focused
        await wait_until(lambda: row_of(app, REPO).available, what="the download and the rescan")
        assert any(f"{REPO} downloaded" in n.message for n in app._notifications)
        assert fake_hub.gets("model.safetensors") and not fake_hub.gets("optimizer.pt")  # only what it needs
        app.query_one(ModelList).set_rows(app.rows)
        await find(pilot, app, "dialogbot-base")
        await pilot.press("a")
        await models_loaded(app, "a")
        assert app.bench.pane("a").engine.describe().family == "gpt2-dialogbot"


async def test_a_hub_id_typed_into_the_filter_is_offered_for_download_and_then_listed(
    make_app: Callable[..., ZhbenchApp],
    fake_hub: FakeHub,  # noqa: F811
    standin_dir: Callable[..., Path],
    tmp_path: Path,
) -> None:
    published = tmp_path / "published"  # a chat-template model in no catalog, with files it does not need
    shutil.copytree(standin_dir("chat-template"), published)
    (published / "optimizer.pt").write_bytes(b"\0" * 1000)
    (published / "onnx").mkdir()
    (published / "onnx" / "model.onnx").write_bytes(b"\0" * 1000)
    fake_hub.repos["someone/tiny-chat"] = published
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")
        await find(pilot, app, "someone/tiny-chat")
        models = app.query_one(ModelList)
        assert [row.id for row in models.shown] == ["someone/tiny-chat"]
        assert str(models.table.get_row_at(0)[0]) == "download someone/tiny-chat"
        await pilot.press("enter")
        await wait_until(lambda: isinstance(app.screen, QuestionDialog), what="the question")
        await pilot.press("enter")
        await wait_until(lambda: any(row.id == "someone/tiny-chat" for row in app.rows), what="download, rescan")
        assert any("someone/tiny-chat downloaded" in n.message for n in app._notifications)
        listed = row_of(app, "someone/tiny-chat")
        assert listed.available and listed.family == "chat-template"
        assert fake_hub.gets("model.safetensors") and fake_hub.gets("chat_template.jinja")
        assert not fake_hub.gets("optimizer.pt") and not fake_hub.gets("onnx/model.onnx")  # only what it needs
        assert [row.id for row in models.shown] == ["someone/tiny-chat"] and models.shown[0].source == "local"
        await pilot.press("a")
        await models_loaded(app, "a")
        assert app.bench.pane("a").engine.describe().family == "chat-template"


async def test_local_models_carry_a_fit_mark_and_a_rescan_finds_a_new_one(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path
) -> None:
    models = tmp_path / "models"
    write_standin("chatyuan", models / "first-chatyuan")
    app = make_app(config=Config(path=tmp_path / "config.toml", model_dirs=[models]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(lambda: app.discovered is not None and isinstance(app.focused, Composer), what="the bench")
        first = row_of(app, str(models / "first-chatyuan"))
        assert first.fit == "fits" and first.estimated_bytes > first.size_bytes  # weights + cache + overhead
        write_standin("gpt2-dialogbot", models / "second-dialogbot")
        await pilot.press("f3")
        await wait_until(lambda: any(row.id == str(models / "second-dialogbot") for row in app.rows), what="rescan")


async def test_the_list_shows_a_models_sizes_as_zhbench_models_does(
    make_app: Callable[..., ZhbenchApp], tmp_path: Path, capsys
) -> None:
    """A newcomer saw 3.0M in the app and 2.8 MiB from `zhbench models` for the same folder (decimal compact
    units against binary ones): both show one form, and it fits the list's narrow columns."""
    from zhbench.workbench.cli import main

    models = tmp_path / "models"
    write_standin("gpt2-dialogbot", models / "tiny")
    assert main(["models", "--dir", str(models)]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if line.endswith(str(models / "tiny")))
    app = make_app(config=Config(path=tmp_path / "config.toml", model_dirs=[models]))
    async with app.run_test(size=SIZE):
        shown = app.query_one(ModelList)

        def estimated() -> int | None:
            return next((i for i, row in enumerate(shown.shown) if row.path == models / "tiny" and row.fit), None)

        await wait_until(lambda: estimated() is not None, what="the model's row and its estimate")
        table = shown.table
        disk, memory = (str(cell) for cell in table.get_row_at(estimated() or 0)[2:])
        assert disk.endswith(" MiB") and memory[:-1].endswith(" MiB")  # the fit mark last
        assert f" {disk} " in listed and f" {memory[:-1]} {memory[-1]} " in listed
        widths = [column.width for column in table.ordered_columns[2:]]
        assert len(disk) <= widths[0] and len(memory) <= widths[1]
