"""A rerun takes a stored answer only for the prompt and settings it answered (issue 26 §1): each answer
carries their digests, and a folder whose answers were given to other prompts is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from zhbench.workbench.session.batch.prompts import PromptItem
from zhbench.workbench.session.batch.runner import run_batch
from zhbench.workbench.session.batch.store import (
    ANSWERS_FILE,
    RUN_FILE,
    SCHEMA,
    BatchStore,
    RunFolderError,
    prompt_hash,
    read_run,
)


def preset(engine):
    return engine.presets()["default"]


def echo(history, params):
    return f"答：{history[-1]['content']}"


def _other_prompts(settings):
    return replace(
        settings,
        items=tuple(PromptItem(item.id, ({"role": "user", "content": f"另一个{item.id}"},)) for item in settings.items),
    )


def test_deleted_run_json_and_other_prompts_do_not_reuse_old_answers(run_dir, make_settings, scripted, progress):
    first = scripted(echo)
    old = make_settings(["m"], items=5)
    with BatchStore(run_dir, old) as store:
        run_batch(store, ["m"], load=lambda _: first, settings_for=preset, progress=progress)
    (run_dir / RUN_FILE).unlink()
    second = scripted(echo)
    with pytest.raises(RunFolderError, match="holds answers of another run") as refused:
        BatchStore(run_dir, _other_prompts(old))
    assert "\n" not in str(refused.value) and "another --out folder" in str(refused.value)
    assert not (run_dir / RUN_FILE).exists() and second.calls == 0  # nothing taken, nothing written
    with BatchStore(run_dir, old) as store:  # the same prompts again: every answer matches and is kept
        outcome = run_batch(store, ["m"], load=lambda _: second, settings_for=preset, progress=progress)
    assert second.calls == 0 and outcome[0].done == 5


def test_other_settings_under_a_deleted_run_json_are_refused(run_dir, make_settings, scripted, progress):
    with BatchStore(run_dir, make_settings(["m"], items=2, temperature=0.7)) as store:
        run_batch(store, ["m"], load=lambda _: scripted(echo), settings_for=preset, progress=progress)
    (run_dir / RUN_FILE).unlink()
    with pytest.raises(RunFolderError, match="another prompt or other settings"):
        BatchStore(run_dir, make_settings(["m"], items=2, temperature=0.9))


def test_each_answer_carries_its_prompts_hash_and_the_run_settings(run_dir, make_settings, scripted, progress):
    settings = make_settings(["m"], items=2)
    with BatchStore(run_dir, settings) as store:
        run_batch(store, ["m"], load=lambda _: scripted(echo), settings_for=preset, progress=progress)
    lines = [json.loads(line) for line in (run_dir / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()]
    answers = {line["item"]: line for line in lines if line["type"] == "answer"}
    for item in settings.items:
        assert answers[item.id]["prompt_hash"] == prompt_hash(item)
        assert answers[item.id]["settings_hash"] == settings.settings_hash()
        assert answers[item.id]["schema"] == SCHEMA == 2


def _strip_digests(run_dir):
    """The answers file as a zhbench before schema 2 wrote it."""
    lines = [json.loads(line) for line in (run_dir / ANSWERS_FILE).read_text(encoding="utf-8").splitlines()]
    for line in lines:
        for key in ("prompt_hash", "settings_hash", "schema"):
            line.pop(key, None)
    (run_dir / ANSWERS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def test_answers_from_before_the_digests_still_read_and_resume(run_dir, make_settings, scripted, progress):
    settings = make_settings(["m"], items=3)
    with BatchStore(run_dir, settings) as store:
        run_batch(store, ["m"], load=lambda _: scripted(echo), settings_for=preset, progress=progress)
    _strip_digests(run_dir)
    log = read_run(run_dir)  # migrated on read: run.json vouches for what they answer
    assert len(log.answered()) == 3
    assert {record.prompt_hash for record in log.answers.values()} == {prompt_hash(i) for i in settings.items}
    again = scripted(echo)
    with BatchStore(run_dir, settings) as store:
        run_batch(store, ["m"], load=lambda _: again, settings_for=preset, progress=progress)
    assert again.calls == 0
    (run_dir / RUN_FILE).unlink()  # now nothing says what they answered: refused rather than guessed
    with pytest.raises(RunFolderError, match="does not say what it answers"):
        BatchStore(run_dir, _other_prompts(settings))
