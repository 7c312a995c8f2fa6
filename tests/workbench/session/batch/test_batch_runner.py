"""Running a batch: every key answered once, failures recorded and retried, servers asked concurrently,
seeds per item, and the run folder refusing another run."""

from __future__ import annotations

import json

import pytest

from zhbench.engines.api import default_params
from zhbench.engines.errors import GenerationError, ModelLoadError
from zhbench.workbench.session.batch.runner import item_seed, run_batch
from zhbench.workbench.session.batch.store import ANSWERS_FILE, BatchStore, RunFolderError, read_run


def preset(engine):
    return engine.presets()["default"]


def echo(history, params):
    return f"答：{history[-1]['content']}"


def test_every_item_through_every_model_once(run_dir, make_settings, scripted, progress):
    engines = {"m1": scripted(echo), "m2": scripted(echo)}
    with BatchStore(run_dir, make_settings(["m1", "m2"], items=3, repeat=2)) as store:
        outcome = run_batch(store, ["m1", "m2"], load=engines.__getitem__, settings_for=preset, progress=progress)
    log = read_run(run_dir)
    assert len(log.answers) == 12 and log.answered() == set(log.answers)
    assert [state.done for state in outcome] == [6, 6]
    assert log.answers[("m2", "q1", 1)].message.content == "答：问题1"
    assert {name: pane.family for name, pane in log.models.items()} == {"m1": "scripted", "m2": "scripted"}
    assert progress.events[0] == ("started", "m1", 0) and progress.events[-1] == ("finished", "m2", 6)


def test_seeds_are_per_item_and_repeat_and_recorded(run_dir, make_settings, scripted, progress):
    engine = scripted(echo)
    with BatchStore(run_dir, make_settings(["m"], items=2, repeat=2)) as store:
        run_batch(store, ["m"], load=lambda _: engine, settings_for=preset, progress=progress)
    log = read_run(run_dir)
    seeds = {key: record.seed for key, record in log.answers.items()}
    assert len(set(seeds.values())) == 4
    for (_, item, repeat), seed in seeds.items():
        assert seed == item_seed(7, item, repeat) == log.answers[("m", item, repeat)].message.params["seed"]
    assert item_seed(7, "q0", 0) != item_seed(8, "q0", 0)


def test_a_model_that_fails_to_load_and_an_item_that_fails_are_recorded_and_the_run_goes_on(
    run_dir, make_settings, scripted, progress
):
    def flaky(history, params):
        if history[-1]["content"] == "问题1":
            raise RuntimeError("CUDA out of memory")
        return "好"

    def load(name):
        if name == "broken":
            raise ModelLoadError("/models/broken", "missing config.json")
        return scripted(flaky)

    with BatchStore(run_dir, make_settings(["broken", "ok"], items=3)) as store:
        outcome = run_batch(store, ["broken", "ok"], load=load, settings_for=preset, progress=progress)
    assert outcome[0].problem == "/models/broken: missing config.json"
    assert (outcome[1].done, outcome[1].failed) == (2, 1)
    log = read_run(run_dir)
    assert log.load_failures["broken"].error == "/models/broken: missing config.json"
    failed = log.answers[("ok", "q1", 0)]
    assert failed.failed and failed.message.error == "RuntimeError: CUDA out of memory"
    assert log.answered() == {("ok", "q0", 0), ("ok", "q2", 0)}


def test_a_rerun_answers_only_what_is_missing_or_failed(run_dir, make_settings, scripted, progress):
    failing = {"问题2"}

    def sometimes(history, params):
        if history[-1]["content"] in failing:
            raise GenerationError("the server hung up", partial=None)
        return "好"

    first = scripted(sometimes)
    with BatchStore(run_dir, make_settings(["m"], items=4)) as store:
        run_batch(store, ["m"], load=lambda _: first, settings_for=preset, progress=progress)
    assert first.calls == 4
    failing.clear()
    second = scripted(sometimes)
    with BatchStore(run_dir, make_settings(["m"], items=4)) as store:
        outcome = run_batch(store, ["m"], load=lambda _: second, settings_for=preset, progress=progress)
    assert second.calls == 1 and outcome[0].done == 4
    log = read_run(run_dir)
    assert log.answered() == {("m", f"q{n}", 0) for n in range(4)}
    third = scripted(sometimes)
    with BatchStore(run_dir, make_settings(["m"], items=4)) as store:
        run_batch(store, ["m"], load=lambda _: third, settings_for=preset, progress=progress)
    assert third.calls == 0  # nothing left: not even loaded again


def test_a_server_model_gets_concurrent_requests_a_local_one_does_not(run_dir, make_settings, scripted, progress):
    server = scripted(echo, path=None, delay_s=0.05)
    local = scripted(echo, delay_s=0.01)
    engines = {"srv/m": server, "local": local}
    with BatchStore(run_dir, make_settings(["srv/m", "local"], items=12)) as store:
        run_batch(store, list(engines), load=engines.get, settings_for=preset, progress=progress, concurrency=4)
    assert server.most_in_flight == 4 and local.most_in_flight == 1
    assert len(read_run(run_dir).answered()) == 24


def test_a_folder_refuses_another_run_and_takes_more_models(run_dir, make_settings):
    with BatchStore(run_dir, make_settings(["m1"], temperature=0.7)):
        pass
    with (
        pytest.raises(RunFolderError, match=r"temperature: 0\.7 recorded, 0\.9 now"),
        BatchStore(run_dir, make_settings(["m1"], temperature=0.9)),
    ):
        pass
    with (
        pytest.raises(RunFolderError, match=r"prompts differ \(3 items recorded, 2 now; item 'q2' not among them"),
        BatchStore(run_dir, make_settings(["m1"], items=2, temperature=0.7)),
    ):
        pass
    with BatchStore(run_dir, make_settings(["m2"], temperature=0.7)) as store:
        assert store.settings.models == ("m1", "m2")
    assert json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["models"] == ["m1", "m2"]


def test_a_folder_of_other_files_is_not_taken(run_dir, make_settings):
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(RunFolderError, match="holds other files"):
        BatchStore(run_dir, make_settings(["m"]))
    assert [path.name for path in run_dir.iterdir()] == ["notes.txt"]


def test_one_writer_per_folder(run_dir, make_settings):
    with BatchStore(run_dir, make_settings(["m"])), pytest.raises(RunFolderError, match="another zhbench batch"):
        BatchStore(run_dir, make_settings(["m"]))
    with BatchStore(run_dir, make_settings(["m"])):  # released with the first
        pass


def test_a_torn_last_line_is_cut_off_and_answered_again(run_dir, make_settings, scripted, progress):
    engine = scripted(echo)
    with BatchStore(run_dir, make_settings(["m"], items=3)) as store:
        run_batch(store, ["m"], load=lambda _: engine, settings_for=preset, progress=progress)
    answers = run_dir / ANSWERS_FILE
    data = answers.read_bytes()
    answers.write_bytes(data[: len(data) - 40])  # the last answer cut part-way, as a kill leaves it
    assert read_run(run_dir).damaged_lines == 0 and len(read_run(run_dir).answers) == 2  # as a reader sees it
    again = scripted(echo)
    with BatchStore(run_dir, make_settings(["m"], items=3)) as store:
        run_batch(store, ["m"], load=lambda _: again, settings_for=preset, progress=progress)
    log = read_run(run_dir)
    assert again.calls == 1 and log.damaged_lines == 0 and len(log.answered()) == 3


def test_seeded_runs_of_a_local_standin_give_the_same_answers(tmp_path, make_settings, progress, engine_for):
    engine = engine_for("gpt2-dialogbot")

    def short(engine):
        return default_params(engine).with_overrides({"max_new_tokens": 6})

    texts = []
    for name in ("one", "two"):
        with BatchStore(tmp_path / name, make_settings(["tiny"], items=3)) as store:
            run_batch(store, ["tiny"], load=lambda _: engine, settings_for=short, progress=progress)
        log = read_run(tmp_path / name)
        texts.append({key[1]: record.message.content for key, record in log.answers.items()})
    assert texts[0] == texts[1] and len(set(texts[0].values())) == 3  # the same per item, another per item
