"""``zhbench leaderboard`` and ``zhbench votes export``: the JSON names scripts read, the plain table, the
FastChat round trip, and one clear line for a broken battles file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhbench.workbench.cli import main
from zhbench.workbench.session.arena.votes import BattleModel, Verdict, VoteStore, new_battle


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def vote(store: VoteStore, model_a: str, model_b: str, verdict: Verdict, reply: str = "好", **options: Any) -> None:
    turns = [{"role": "user", "content": "写一首诗"}, {"role": "assistant", "content": reply}]
    store.record(
        new_battle(
            BattleModel(model_a, "chat-template"),
            BattleModel(model_b, "chat-template"),
            verdict,
            turns,
            turns,
            **options,
        )
    )


@pytest.fixture
def voted() -> None:
    """A few votes in the user's store: qwen beats glm mostly, one named vote, one leaked battle."""
    with VoteStore.open() as store:
        for verdict in ("a", "a", "a", "b", "tie", "bothbad"):
            vote(store, "qwen", "glm", verdict)
        for verdict in ("a", "b", "b"):
            vote(store, "glm", "deepseek", verdict)
        vote(store, "deepseek", "qwen", "a", anonymous=False)
        vote(store, "deepseek", "qwen", "a", reply="我是DeepSeek。")


def test_json_has_the_names_scripts_read(capsys, voted) -> None:
    code, out, _ = run(capsys, "leaderboard", "--json", "--bootstrap", "20")
    data = json.loads(out)
    assert code == 0
    assert {"models", "win_rates", "predicted", "battles", "bootstrap", "left_out", "skipped"} <= set(data)
    assert data["models"][0]["model"] == "qwen"
    assert all({"model", "rating", "ci_low", "ci_high", "rank", "battles"} <= set(row) for row in data["models"])
    assert data["battles"] == 9 and data["left_out"] == {"named": 1, "leaked": 1, "judge": 0}
    assert data["win_rates"]["qwen"]["glm"] == pytest.approx(4 / 6) and data["win_rates"]["qwen"]["qwen"] is None
    assert data["bootstrap"] == {"rounds": 20, "seed": 0}
    code, out, _ = run(capsys, "leaderboard", "--json", "--bootstrap", "0", "--include-named", "--include-leaked")
    assert json.loads(out)["battles"] == 11


def test_the_plain_table_has_a_row_and_a_bar_per_model(capsys, voted) -> None:
    code, out, _ = run(capsys, "leaderboard", "--anchor", "glm")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith("9 battles from ") and "anchor glm = 1000" in lines[0]
    assert "1 cast knowing the models left out (--include-named)" in lines[0]
    rows = {line.split()[1]: line for line in lines[2:5]}
    assert set(rows) == {"qwen", "glm", "deepseek"}
    assert lines[5] == "too few battles for the intervals to say much: 3 of 3 models have fewer than 10 battles"
    assert " 1000.0 " in rows["glm"] and all("█" in row for row in rows.values())
    assert "\x1b" not in out  # plain text: pipes and files get no escape sequences


def test_exported_votes_rank_the_same_from_the_file(capsys, voted, tmp_path: Path) -> None:
    path = tmp_path / "battles.json"
    code, _, err = run(capsys, "votes", "export", "--format", "fastchat", "-o", str(path))
    assert code == 0 and f"wrote {path}" in err
    assert len(json.loads(path.read_text(encoding="utf-8"))) == 11
    options = ("leaderboard", "--json", "--style-control", "--bootstrap", "10")
    _, from_store, _ = run(capsys, *options)
    _, from_file, _ = run(capsys, *options, "--battles", str(path))
    store_data, file_data = json.loads(from_store), json.loads(from_file)
    assert store_data["models"] == file_data["models"] and store_data["style"] == file_data["style"]
    assert file_data["source"] == str(path) and file_data["left_out"] == {"named": 1, "leaked": 1, "judge": 0}


def test_no_votes_yet_is_an_empty_board(capsys, user_dirs) -> None:
    code, out, _ = run(capsys, "leaderboard")
    assert code == 0 and out.startswith("0 battles from ")
    assert "no votes yet: vote in the blind arena (`zhbench arena`" in out
    assert run(capsys, "votes", "export")[1] == "[]\n"
    assert not (user_dirs["data"] / "zhbench" / "votes.sqlite3").exists()  # reading made no database


def test_skipped_records_are_counted(capsys, tmp_path: Path) -> None:
    path = tmp_path / "battles.json"
    path.write_text(
        json.dumps(
            [
                {"model_a": "x", "model_b": "y", "winner": "model_a"},
                {"model_a": "x", "model_b": "y", "winner": "model_b"},
                {"model_a": "x", "model_b": "y", "winner": "skip"},
            ]
        ),
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "leaderboard", "--json", "--battles", str(path))
    assert code == 0 and json.loads(out)["skipped"] == {"winner 'skip'": 1} and json.loads(out)["battles"] == 2


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("[{]", (), "battles.json: not valid JSON"),
        ('{"battles": []}', (), "expected a JSON list of battles"),
        ('[{"model_a": "x", "model_b": "y", "winner": "tie"}]', ("--style-control",), "style control needs"),
        ('[{"model_a": "x", "model_b": "y", "winner": "tie"}]', ("--anchor", "z"), "no battles of 'z'"),
        ("[]", ("--bootstrap", "-1"), "--bootstrap takes 0 or more"),
    ],
)
def test_a_broken_battles_file_or_option_is_one_clear_line(capsys, tmp_path: Path, content: str, argv, message) -> None:
    path = tmp_path / "battles.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "leaderboard", "--battles", str(path), *argv)
    assert code == 1 and out == ""
    assert err.startswith("zhbench: error: ") and message in err and len(err.splitlines()) == 1


def test_judge_votes_stay_out_after_an_export_round_trip(capsys, voted, tmp_path: Path) -> None:
    with VoteStore.open() as store:
        for _ in range(80):
            vote(store, "glm", "qwen", "a", source="judge")
    path = tmp_path / "battles.json"
    assert run(capsys, "votes", "export", "-o", str(path))[0] == 0
    _, out, _ = run(capsys, "leaderboard", "--json", "--bootstrap", "0", "--battles", str(path))
    data = json.loads(out)
    assert data["battles"] == 9 and data["left_out"] == {"named": 1, "leaked": 1, "judge": 80}
    _, out, _ = run(capsys, "leaderboard", "--json", "--bootstrap", "0", "--battles", str(path), "--include-judge")
    assert json.loads(out)["battles"] == 89


def test_formats_for_papers_and_issues(capsys, voted) -> None:
    _, text, _ = run(capsys, "leaderboard", "--bootstrap", "20")
    code, csv_out, _ = run(capsys, "leaderboard", "--bootstrap", "20", "--format", "csv")
    lines = csv_out.splitlines()
    assert code == 0 and lines[0] == "rank,model,rating,ci_low,ci_high,battles,wins,ties,losses,bounded"
    first = lines[1].split(",")
    assert first[1] == "qwen" and float(first[3]) < float(first[2]) < float(first[4]) and first[-1] == "yes"
    assert f"{float(first[2]):>7.1f}" in text  # the same numbers as the screen's table
    _, md, _ = run(capsys, "leaderboard", "--bootstrap", "20", "--format", "md")
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert table[0] == "| rank | model | rating | 95% interval | battles | W/T/L |" and len(table) == 5
    assert f"| {first[2]} | {float(first[3]):.0f} – {float(first[4]):.0f} |" in table[2]
    _, as_json, _ = run(capsys, "leaderboard", "--bootstrap", "20", "--format", "json")
    _, flag_json, _ = run(capsys, "leaderboard", "--bootstrap", "20", "--json")
    assert as_json == flag_json and json.loads(as_json)["models"][0]["bounded"] is True


def test_an_export_onto_zhbenchs_own_records_is_refused_and_they_stay_whole(capsys, voted, user_dirs) -> None:
    from zhbench.workbench.session.arena.votes import votes_path
    from zhbench.workbench.session.config import config_path

    store = votes_path()
    before = store.read_bytes()
    config = config_path()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('theme = "zhbench-light"\n', encoding="utf-8")
    for target in (store, config, user_dirs["data"] / "zhbench" / "transcripts" / "x.jsonl"):
        code, _, err = run(capsys, "votes", "export", "-o", str(target))
        assert code == 1 and "give -o a file of your own" in err
    assert store.read_bytes() == before
    assert config.read_text(encoding="utf-8") == 'theme = "zhbench-light"\n'
    exports = user_dirs["data"] / "zhbench" / "exports"
    exports.mkdir(parents=True)
    code, _, err = run(capsys, "votes", "export", "-o", str(exports / "v.json"))
    assert code == 0 and (exports / "v.json").is_file()


def test_votes_rename_refuses_a_name_with_control_characters_and_prints_none(capsys, voted) -> None:
    for name in ("b\x1b]0;pwned\x07", "two\nlines", "tab\there", "x" * 201):
        code, out, err = run(capsys, "votes", "rename", "qwen", name)
        assert code == 1 and "refused" in err
        assert "\x1b" not in out + err and "\x07" not in out + err
    code, out, _ = run(capsys, "leaderboard", "--json", "--bootstrap", "0")
    assert "qwen" in {row["model"] for row in json.loads(out)["models"]}  # nothing renamed
