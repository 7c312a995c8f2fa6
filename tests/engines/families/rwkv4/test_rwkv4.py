"""ChatRWKV (RWKV-4): prompts, the carried state, commands and sampling, against v2/chat.py@9a1eb9a's own loop."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from zhbench.engines.errors import ModelLoadError, ZhbenchError
from zhbench.engines.families.rwkv4.chat_rules import (
    CHAT_COMMANDS,
    INIT_PROMPTS,
    TurnKind,
    chat_exchanges,
    newline_adjustment,
    normalized_init_prompt,
    parse_user_message,
)
from zhbench.engines.families.rwkv4.checkpoint import PILE_TOKENIZER
from zhbench.engines.families.rwkv4.engine import Rwkv4Engine
from zhbench.engines.registry import STANDIN_MARKER, detect_family, load_engine
from zhbench.engines.standins.rwkv4 import random_rwkv4_state, write_rwkv4_standin
from zhbench.engines.types import StopReason
from zhbench.workbench.cli import main

REAL_20B = Path(__file__).resolve().parents[4].parent / "shared" / "data" / PILE_TOKENIZER


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Token-at-a-time RNN steps on a tiny model: torch's thread pool only adds wake-up latency here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def engine(standin_dir) -> Rwkv4Engine:
    """A freshly loaded stand-in: these tests depend on the state an engine carries."""
    return load_engine(str(standin_dir("rwkv4")), device="cpu")


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


class UpstreamChat:
    """v2/chat.py@9a1eb9a's ``run_rnn``, ``save_all_stat`` and ``on_message`` chat branch, written as upstream
    runs them, over the engine's own RWKV model and the rwkv package's PIPELINE."""

    def __init__(self, engine: Rwkv4Engine, init_prompt: str) -> None:
        from rwkv.utils import PIPELINE

        self.model = engine.model
        self.pipeline = PIPELINE(engine.model, engine.word_name)
        self.newline = self.pipeline.encode("\n")[0]
        self.avoid = [self.pipeline.encode(c)[0] for c in "，。：？！"]
        self.tokens: list[int] = []
        self.state = None
        self.saved: dict[str, tuple] = {}
        self.save("chat_init", self.run_rnn(self.pipeline.encode(init_prompt)))
        self.save("chat", self.saved["chat_init"][0])

    def run_rnn(self, tokens: list[int], newline_adj: float = 0) -> torch.Tensor:
        self.tokens += tokens
        out, self.state = self.model.forward(tokens, self.state)
        out[0] = -999999999
        out[self.newline] += newline_adj
        if self.tokens[-1] in self.avoid:
            out[self.tokens[-1]] = -999999999
        return out

    def save(self, name: str, out: torch.Tensor) -> None:
        import copy

        self.saved[name] = (out, copy.deepcopy(self.state), copy.deepcopy(self.tokens))

    def load(self, name: str) -> torch.Tensor:
        import copy

        out, state, tokens = self.saved[name]
        self.state, self.tokens = copy.deepcopy(state), copy.deepcopy(tokens)
        return out.clone()

    def chat(self, msg: str, *, seed: int, greedy: bool = False, temperature: float = 1.0) -> list[int]:
        out = self.load("chat")
        out = self.run_rnn(self.pipeline.encode(f"User: {msg}\n\nBot:"), newline_adj=-999999999)
        self.save("chat_pre", out)
        begin = len(self.tokens)
        occurrence: dict[int, float] = {}
        np.random.seed(seed)
        for i in range(999):
            newline_adj = -999999999 if i <= 0 else (i - 40) / 10 if i <= 40 else 0 if i <= 150 else (i - 150) * 0.25
            for n in occurrence:
                out[n] -= 0.2 + occurrence[n] * 0.2
            if greedy:
                token = int(out.argmax())
            else:
                token = self.pipeline.sample_logits(out, temperature=temperature, top_p=0.85)
            occurrence[token] = occurrence.get(token, 0) + 1
            occurrence[self.newline] = 0
            out = self.run_rnn([token], newline_adj=newline_adj)
            if "\n\n" in self.pipeline.decode(self.tokens[begin:]):
                break
        self.save("chat", out)
        return self.tokens[begin:]


def count_fed_tokens(engine: Rwkv4Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the length of every token list the model is fed (the real forward still runs)."""
    calls: list[int] = []
    forward = engine.model.forward

    def counted(tokens, state, *args, **kwargs):
        calls.append(len(tokens))
        return forward(tokens, state, *args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", counted)
    return calls


# --- pure rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, kind, text",
    [
        ("  你好\\n世界  ", TurnKind.CHAT, "你好\n世界"),
        ("a\r\nb\n\n\n\nc", TurnKind.CHAT, "a\nb\nc"),
        ("+reset", TurnKind.RESET, ""),
        ("+", TurnKind.REGENERATE, ""),
        ("+GEN  从前有座山", TurnKind.GEN, "从前有座山"),
        ("+qq 为什么天是蓝的", TurnKind.QQ, "为什么天是蓝的"),
        ("+qa 企鹅会飞吗", TurnKind.QA, "企鹅会飞吗"),
        ("+i 写一首诗\n\n关于秋天", TurnKind.INSTRUCT, "写一首诗\n关于秋天"),
        ("++", TurnKind.RETRY, ""),
        ("+++", TurnKind.CONTINUE, ""),
        ("+gen", TurnKind.CHAT, "+gen"),
    ],
)
def test_messages_and_commands_are_recognised_as_upstream(typed, kind, text):
    turn = parse_user_message(typed)
    assert (turn.kind, turn.text) == (kind, text)


def test_temperature_and_top_p_inside_a_message():
    turn = parse_user_message("讲个故事 -temp=9 -top_p=0.50")
    assert (turn.text, turn.temperature, turn.top_p) == ("讲个故事", 5.0, 0.5)
    assert parse_user_message("-temp=0.01 +gen 从前").temperature == 0.2
    assert parse_user_message("-temp=0.01 +gen 从前").kind is TurnKind.GEN
    kept = parse_user_message("-temp=hot 你好")
    assert (kept.text, kept.temperature) == ("-temp=hot 你好", None)


def test_init_prompts_are_normalised_as_upstream():
    text = normalized_init_prompt(INIT_PROMPTS["Chinese-2"])
    assert text.startswith("\nThe following is a verbose and detailed conversation between an AI assistant called Bot")
    assert text.endswith("企鹅是不会飞的。它们的翅膀主要用于游泳和平衡，而不是飞行。\n\n")
    assert normalized_init_prompt(INIT_PROMPTS["Chinese-1"]) == (
        "\nExpert Questions & Helpful Answers\n\nAsk Research Experts\n\n"
    )
    assert normalized_init_prompt(INIT_PROMPTS["none"]) == ""


def test_newline_schedule():
    assert [newline_adjustment(i) for i in (0, 1, 40, 41, 150, 151, 170)] == [-999999999, -3.9, 0, 0, 0, 0.25, 5]


def test_chat_exchanges_replay_the_commands():
    history = [
        user("一"),
        bot("a1"),
        user("+"),
        bot("a1 again"),
        user("+gen 从前"),
        bot("有座山"),
        user("二"),
        bot("a2"),
        user("没有回答"),
        user("+reset"),
        bot("Chat reset."),
        user("三"),
        bot("a3"),
    ]
    assert chat_exchanges(history[:8]) == (("一", "a1 again"), ("二", "a2"))
    assert chat_exchanges(history) == (("三", "a3"),)


# --- input ids ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_20b_engine(tmp_path_factory) -> Rwkv4Engine:
    if not REAL_20B.is_file():
        pytest.skip("../shared/data/20B_tokenizer.json is not here")
    folder = tmp_path_factory.mktemp("rwkv4-20b")
    torch.save(random_rwkv4_state(50277, n_embd=8, n_layer=1), folder / "RWKV-4-Pile-20b-standin.pth")
    shutil.copy(REAL_20B, folder / PILE_TOKENIZER)
    return load_engine(str(folder), device="cpu")


HISTORY = [user("你好"), bot("你好！有什么可以帮你？"), user("企鹅会飞吗\\n它们会游泳吗")]


def test_input_ids_with_the_real_20b_tokenizer(real_20b_engine, capsys, tmp_path):
    from tokenizers import Tokenizer

    engine = real_20b_engine
    assert (engine.newline_id, engine.end_of_text_id) == (187, 0)
    assert engine.avoid_repeat_ids == {6238, 4340, 18140, 26443, 26680}  # ，。：？！
    tokenizer = Tokenizer.from_file(str(REAL_20B))

    def enc(text):
        return tokenizer.encode(text).ids

    init = "\n" + "\n".join(line.strip() for line in INIT_PROMPTS["Chinese-2"].text.strip().split("\n")) + "\n\n"
    expected = enc(init) + enc("User: 你好\n\nBot:") + enc(" 你好！有什么可以帮你？\n\n")
    expected += enc("User: 企鹅会飞吗\n它们会游泳吗\n\nBot:")
    assert enc(init)[-1] == 535  # the era feeds init_prompt's trailing "\n\n" as one token
    prompt = engine.prompt_for(HISTORY)
    assert prompt.input_ids == expected
    assert prompt.text.endswith("User: 你好\n\nBot: 你好！有什么可以帮你？\n\nUser: 企鹅会飞吗\n它们会游泳吗\n\nBot:")

    history_file = tmp_path / "history.json"
    history_file.write_text(json.dumps(HISTORY, ensure_ascii=False), encoding="utf-8")
    assert main(["prompt", "--model", str(engine.model_path), "--history", str(history_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_ids"] == expected


def test_a_world_model_uses_the_packages_vocabulary(tmp_path):
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    folder = write_rwkv4_standin(tmp_path / "world", vocabulary="world")
    assert not (folder / PILE_TOKENIZER).exists()
    engine = load_engine(str(folder), device="cpu")
    assert "rwkv_vocab_v20230424" in engine.describe().details["tokenizer"]
    assert engine.newline_id == 11
    vocab = TRIE_TOKENIZER(str(Path(__import__("rwkv").__file__).parent / "rwkv_vocab_v20230424.txt"))
    ids = engine.prompt_for([user("你好")]).input_ids
    assert ids[-len(vocab.encode("User: 你好\n\nBot:")) :] == vocab.encode("User: 你好\n\nBot:")
    reply = engine.reply([user("你好")], engine.default_params().with_overrides({"greedy": True, "max_new_tokens": 8}))
    assert reply.stats.new_tokens == 8
    # A character cut in two (a stop, a length cut) costs only itself, not the whole text, and a blank
    # line before it still ends a chat reply.
    half_a_character = vocab.token2idx["你".encode()[:1]]
    cut = [*vocab.encode("好的\n\n"), half_a_character]
    assert engine.decode(cut) == "好的\n\n\ufffd" and vocab.decode(cut) == "\ufffd"


# --- replies against upstream's loop ------------------------------------------------------------


@pytest.mark.parametrize("greedy", [True, False])
def test_replies_match_upstreams_loop_turn_after_turn(engine, greedy):
    upstream = UpstreamChat(engine, normalized_init_prompt(INIT_PROMPTS["Chinese-2"]))
    params = engine.default_params().with_overrides({"greedy": greedy, "seed": 7})
    first = engine.reply([user("你好")], params)
    assert first.output_ids == upstream.chat("你好", seed=7, greedy=greedy)
    assert first.stats.stop_reason is StopReason.STOP_RULE
    assert first.text == engine.pipeline.decode(first.output_ids).strip()
    second = engine.reply([user("你好"), bot(first.text), user("今天天气怎么样？")], params)
    assert second.output_ids == upstream.chat("今天天气怎么样？", seed=7, greedy=greedy)


def test_each_turn_feeds_only_its_own_tokens(engine, monkeypatch):
    fed = count_fed_tokens(engine, monkeypatch)
    params = engine.default_params().with_overrides({"seed": 1})
    history = [user("你好")]
    for turn in range(3):
        fed.clear()
        reply = engine.reply(history, params)
        asked = len(engine.pipeline.encode(f"User: {history[-1]['content']}\n\nBot:"))
        assert reply.stats.prompt_tokens == asked
        assert fed == [asked] + [1] * reply.stats.new_tokens  # the message, then one call per token
        history += [bot(reply.text), user(f"第{turn}个问题")]


def test_a_foreign_history_is_fed_once_then_continued(engine, monkeypatch):
    fed = count_fed_tokens(engine, monkeypatch)
    history = [user("你好"), bot("你好呀"), user("+gen 从前"), bot("有座山"), user("再见")]
    params = engine.default_params().with_overrides({"greedy": True})
    reply = engine.reply(history, params)
    segments = ["User: 你好\n\nBot:", " 你好呀\n\n", "User: 再见\n\nBot:"]
    assert fed[:3] == [len(engine.pipeline.encode(s)) for s in segments]
    assert reply.stats.prompt_tokens == sum(fed[:3])

    upstream = UpstreamChat(engine, normalized_init_prompt(INIT_PROMPTS["Chinese-2"]))
    upstream.run_rnn(upstream.pipeline.encode("User: 你好\n\nBot:"))
    upstream.save("chat", upstream.run_rnn(upstream.pipeline.encode(" 你好呀\n\n")))
    assert reply.output_ids == upstream.chat("再见", seed=0, greedy=True)

    fed.clear()
    follow_up = engine.reply([*history, bot(reply.text), user("好的")], params)
    assert follow_up.stats.prompt_tokens == len(engine.pipeline.encode("User: 好的\n\nBot:"))


def test_a_cleared_conversation_starts_from_chat_init(engine, monkeypatch):
    params = engine.default_params().with_overrides({"seed": 2})
    first = engine.reply([user("你好")], params)
    engine.reply([user("你好"), bot(first.text), user("再说")], params)
    fed = count_fed_tokens(engine, monkeypatch)
    restarted = engine.reply([user("新话题")], params)
    assert fed[0] == restarted.stats.prompt_tokens == len(engine.pipeline.encode("User: 新话题\n\nBot:"))
    init_ids = engine.pipeline.encode(normalized_init_prompt(INIT_PROMPTS["Chinese-2"]))
    assert restarted.prompt.input_ids == init_ids + engine.pipeline.encode("User: 新话题\n\nBot:")


def test_choosing_another_init_prompt(engine):
    params = engine.default_params().with_overrides({"init_prompt": "English-2", "seed": 1})
    first = engine.reply([user("hi")], params)
    init_ids = engine.pipeline.encode(normalized_init_prompt(INIT_PROMPTS["English-2"]))
    asked = engine.pipeline.encode("Bob: hi\n\nAlice:")
    assert first.prompt.input_ids == init_ids + asked
    assert first.stats.prompt_tokens == len(init_ids) + len(asked)  # the new init prompt is fed this turn
    second = engine.reply([user("hi"), bot(first.text), user("more")], params)
    assert second.stats.prompt_tokens == len(engine.pipeline.encode("Bob: more\n\nAlice:"))
    bare = engine.reply([user("hi")], params.with_overrides({"init_prompt": "none"}))
    assert bare.prompt.input_ids == engine.pipeline.encode("User: hi\n\nBot:")
    with pytest.raises(ValueError, match="unknown init_prompt 'Klingon-2'"):
        engine.reply([user("hi")], params.with_overrides({"init_prompt": "Klingon-2"}))


# --- commands -----------------------------------------------------------------------------------


def test_regenerate_and_plus_reuse_chat_pre_without_feeding(engine, monkeypatch):
    params = engine.default_params().with_overrides({"seed": 3})
    first = engine.reply([user("你好")], params)
    fed = count_fed_tokens(engine, monkeypatch)
    again = engine.reply([user("你好")], params)  # the app's regenerate: the last reply removed
    assert again.stats.prompt_tokens == 0 and fed == [1] * again.stats.new_tokens
    assert again.output_ids == first.output_ids  # same seed, same state
    other = engine.reply([user("你好"), bot(first.text), user("+")], params.with_overrides({"seed": 4}))
    assert other.stats.prompt_tokens == 0
    assert other.output_ids != first.output_ids
    # the regenerated reply replaced the first one in the carried chat
    fed.clear()
    history = [user("你好"), bot(first.text), user("+"), bot(other.text), user("然后呢")]
    assert engine.reply(history, params).stats.prompt_tokens == len(engine.pipeline.encode("User: 然后呢\n\nBot:"))


def test_plus_on_a_foreign_history_feeds_only_the_message_it_answers_again(engine):
    history = [user("你好"), bot("你好呀"), user("再见"), bot("再见！"), user("+")]
    assert engine.prompt_for(history).input_ids == engine.prompt_for(history[:3]).input_ids
    reply = engine.reply(history, engine.default_params().with_overrides({"seed": 1}))
    segments = ["User: 你好\n\nBot:", " 你好呀\n\n", "User: 再见\n\nBot:"]  # the reply "再见！" is replaced
    assert reply.stats.prompt_tokens == sum(len(engine.pipeline.encode(s)) for s in segments)
    follow_up = [*history[:4], user("+"), bot(reply.text), user("好")]
    assert engine.reply(follow_up).stats.prompt_tokens == len(engine.pipeline.encode("User: 好\n\nBot:"))


def test_reset_answers_and_starts_over(engine, monkeypatch):
    params = engine.default_params().with_overrides({"seed": 5})
    first = engine.reply([user("你好")], params)
    pieces: list[str] = []
    reset = engine.reply([user("你好"), bot(first.text), user("+reset")], params, on_text=pieces.append)
    assert reset.text == "Chat reset." and pieces == ["Chat reset."] and reset.output_ids == []
    fed = count_fed_tokens(engine, monkeypatch)
    history = [user("你好"), bot(first.text), user("+reset"), bot(reset.text), user("重新开始")]
    after = engine.reply(history, params)
    asked = engine.pipeline.encode("User: 重新开始\n\nBot:")
    assert fed[0] == after.stats.prompt_tokens == len(asked)
    init_ids = engine.pipeline.encode(normalized_init_prompt(INIT_PROMPTS["Chinese-2"]))
    assert after.prompt.input_ids == init_ids + asked  # the first turn's reply is gone from the state


def test_free_generation_commands(engine):
    params = engine.default_params().with_overrides({"seed": 6, "free_gen_len": 12})
    gen = engine.reply([user("+gen 从前有座山")], params)
    assert gen.prompt.input_ids == engine.pipeline.encode("\n从前有座山")  # from the empty state
    assert 13 <= gen.stats.new_tokens <= 112 and gen.stats.stop_reason is StopReason.LENGTH
    retry = engine.reply([user("+gen 从前有座山"), bot(gen.text), user("++")], params)
    assert retry.output_ids == gen.output_ids and retry.stats.prompt_tokens == 0
    more = engine.reply([user("++"), bot(retry.text), user("+++")], params)
    assert more.prompt.input_ids == engine.pipeline.encode("\n从前有座山") + gen.output_ids
    assert more.stats.prompt_tokens == 0

    qq = engine.reply([user("+qq 为什么 -top_p=0.5")], params)
    assert qq.prompt.input_ids == engine.pipeline.encode("\nQ: 为什么\nA:")
    assert qq.stats.prompt_tokens == len(qq.prompt.input_ids) and qq.stats.new_tokens >= 13
    instruct = engine.prompt_for([user("+i 写诗")], params)
    assert instruct.text == (
        "\nBelow is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n# Instruction:\n写诗\n\n# Response:\n"
    )
    qa = engine.reply([user("你好"), bot("在"), user("+qa 企鹅会飞吗")], params)
    init_ids = engine.pipeline.encode(normalized_init_prompt(INIT_PROMPTS["Chinese-2"]))
    assert qa.prompt.input_ids == init_ids + engine.pipeline.encode("User: 企鹅会飞吗\n\nBot:")
    # free generations leave the chat alone: the next message continues it
    history = [user("你好"), bot("在"), user("+qa 企鹅会飞吗"), bot(qa.text), user("好")]
    assert engine.prompt_for(history).input_ids[: len(init_ids)] == init_ids


def test_commands_with_nothing_to_act_on_answer_with_a_notice(engine):
    assert "Nothing to regenerate" in engine.reply([user("+")]).text
    assert "+gen" in engine.reply([user("++")]).text
    assert "+gen" in engine.reply([user("+++")]).text
    assert set(engine.chat_commands()) == set(CHAT_COMMANDS) >= {"+reset", "+", "+gen TEXT", "++", "+++"}


def test_temperature_inside_a_message(engine):
    params = engine.default_params().with_overrides({"seed": 8})
    typed = engine.reply([user("讲个故事 -temp=0.3")], params)
    assert typed.prompt.input_ids[-len(engine.pipeline.encode("User: 讲个故事\n\nBot:")) :] == (
        engine.pipeline.encode("User: 讲个故事\n\nBot:")
    )
    engine.forget_conversation()
    set_directly = engine.reply([user("讲个故事")], params.with_overrides({"temperature": 0.3}))
    assert typed.output_ids == set_directly.output_ids
    assert typed.params.temperature == 0.3  # reported with the reply


def test_seeded_replies_reproduce(engine):
    params = engine.default_params().with_overrides({"seed": 9})
    assert engine.reply([user("你好")], params).output_ids == engine.reply([user("你好")], params).output_ids


def test_cancel_stops_within_one_token_and_during_a_long_feed(engine, monkeypatch):
    fed = count_fed_tokens(engine, monkeypatch)
    cancel = threading.Event()
    forward = engine.model.forward

    def cancelling_at_the_sixth_token(tokens, state):
        if len(fed) == 6:  # the message and five tokens were fed: this call feeds the sixth
            cancel.set()
        return forward(tokens, state)

    monkeypatch.setattr(engine.model, "forward", cancelling_at_the_sixth_token)
    reply = engine.reply([user("讲个长故事")], engine.default_params(), cancel=cancel)
    assert reply.stats.stop_reason is StopReason.CANCELLED and reply.stats.new_tokens == 7  # at most one more

    fed.clear()
    cancel.clear()
    monkeypatch.setattr(engine.model, "forward", lambda tokens, state: (cancel.set(), forward(tokens, state))[1])
    long_message = "很长的历史，" * 200
    stopped = engine.reply([user(long_message)], engine.default_params(), cancel=cancel)
    assert stopped.stats.stop_reason is StopReason.CANCELLED and stopped.stats.new_tokens == 0
    assert len(fed) == 1 and fed[0] == 256  # one chunk of the message, then it stopped


def test_a_stopped_reply_is_kept_and_the_chat_goes_on(engine, monkeypatch):
    cancel = threading.Event()
    forward = engine.model.forward
    calls = []

    def cancelling_at_the_fourth_call(tokens, state):
        calls.append(len(tokens))
        if len(calls) == 4:
            cancel.set()
        return forward(tokens, state)

    monkeypatch.setattr(engine.model, "forward", cancelling_at_the_fourth_call)
    params = engine.default_params().with_overrides({"seed": 10})
    stopped = engine.reply([user("讲个长故事")], params, cancel=cancel)
    assert stopped.stats.stop_reason is StopReason.CANCELLED and len(stopped.output_ids) == 4
    monkeypatch.setattr(engine.model, "forward", forward)
    fed = count_fed_tokens(engine, monkeypatch)
    after = engine.reply([user("讲个长故事"), bot(stopped.text), user("继续")], params)
    asked = engine.pipeline.encode("User: 继续\n\nBot:")
    assert fed[0] == after.stats.prompt_tokens == len(asked)
    kept = stopped.output_ids + engine.pipeline.encode("\n\n") + asked
    assert after.prompt.input_ids[-len(kept) :] == kept  # the stopped reply, closed by a blank line


# --- loading ------------------------------------------------------------------------------------


def copy_standin(standin_dir: Callable[..., Path], tmp_path: Path) -> Path:
    folder = tmp_path / "rwkv-copy"
    shutil.copytree(standin_dir("rwkv4"), folder)
    return folder


def test_detection_strategy_and_quiet_loading(standin_dir, tmp_path, capfd):
    folder = copy_standin(standin_dir, tmp_path)
    (folder / STANDIN_MARKER).unlink()
    checkpoint = next(folder.glob("*.pth"))
    assert detect_family(folder) == detect_family(checkpoint) == "rwkv4"
    capfd.readouterr()
    engine = load_engine(str(checkpoint), extra={"strategy": "cpu fp32i8"})
    assert capfd.readouterr() == ("", "")  # the rwkv package's prints stay off the screen
    assert engine.describe().details["strategy"] == "cpu fp32i8" and engine.model_path == checkpoint
    assert load_engine(str(folder), dtype="bfloat16").describe().details["strategy"] == "cpu bf16"
    shutil.copy(checkpoint, folder / "second.pth")
    with pytest.raises(ModelLoadError, match=r"expected exactly one \.pth checkpoint in the folder, found 2"):
        load_engine(str(folder), family="rwkv4")


@pytest.mark.parametrize("strategy", ["cpu", "cpu fp8", "gpu fp16", "cpu fp16i4", "cuda fp16 ->"])
def test_invalid_strategies_are_refused_clearly(standin_dir, strategy):
    with pytest.raises(ZhbenchError, match=r"invalid RWKV strategy.*'cuda fp16i8 \*10 -> cuda fp16'"):
        load_engine(str(standin_dir("rwkv4")), extra={"strategy": strategy})


def test_strategy_needs_a_gpu_and_an_rwkv_model(standin_dir):
    if not torch.cuda.is_available():
        with pytest.raises(ZhbenchError, match="torch sees no CUDA GPU"):
            load_engine(str(standin_dir("rwkv4")), extra={"strategy": "cuda fp16"})
    with pytest.raises(ZhbenchError, match="gpt2-dialogbot takes no strategy"):
        load_engine(str(standin_dir("gpt2-dialogbot")), extra={"strategy": "cpu fp32"})


def test_broken_checkpoints_and_missing_tokenizers_are_named(standin_dir, tmp_path, monkeypatch):
    folder = copy_standin(standin_dir, tmp_path)
    checkpoint = next(folder.glob("*.pth"))
    state = torch.load(checkpoint, weights_only=True)

    del state["blocks.1.att.time_first"]
    torch.save(state, checkpoint)
    with pytest.raises(ModelLoadError, match=r"weights lack blocks\.1\.att\.time_first"):
        load_engine(str(folder))
    state["blocks.1.att.time_first"] = torch.zeros(7)
    torch.save(state, checkpoint)
    with pytest.raises(ModelLoadError, match=r"blocks\.1\.att\.time_first has shape \(7,\)"):
        load_engine(str(folder))
    torch.save({**state, "blocks.0.att.ln_x.weight": torch.zeros(3)}, checkpoint)
    with pytest.raises(ModelLoadError, match="RWKV-5 checkpoint"):
        load_engine(str(folder))

    shutil.copy(next(standin_dir("rwkv4").glob("*.pth")), checkpoint)
    tokenizer = folder / PILE_TOKENIZER
    tokenizer.rename(tmp_path / "elsewhere.json")
    with pytest.raises(ModelLoadError, match=r"need 20B_tokenizer\.json.*World models"):
        load_engine(str(folder))
    monkeypatch.setenv("ZHBENCH_RWKV_TOKENIZER", str(tmp_path / "elsewhere.json"))
    assert load_engine(str(folder)).word_name == str(tmp_path / "elsewhere.json")
    if REAL_20B.is_file():
        monkeypatch.setenv("ZHBENCH_RWKV_TOKENIZER", str(REAL_20B))
        with pytest.raises(ModelLoadError, match="the tokenizer has 50277 ids but the checkpoint"):
            load_engine(str(folder))


def test_cli_strategy_and_make_tiny(capsys, tmp_path):
    assert main(["make-tiny", "rwkv4", str(tmp_path / "tiny")]) == 0
    assert "rwkv4 stand-in" in capsys.readouterr().out
    model = str(tmp_path / "tiny")
    assert main(["ask", "--model", model, "--strategy", "cpu fp32", "--seed", "1", "--json", "你好"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "rwkv4" and data["params"]["presence_penalty"] == 0.2
    assert data["stats"]["prompt_tokens"] > 0
    assert main(["ask", "--model", model, "--strategy", "cpu", "你好"]) == 1
    assert "invalid RWKV strategy" in capsys.readouterr().err
