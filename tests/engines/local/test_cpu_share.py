"""Two replies on the CPU at once share its cores, and a reply left alone takes them all back."""

from __future__ import annotations

import threading

import pytest
import torch

from zhbench.engines.local import token_engine
from zhbench.engines.local.cpu_share import CpuShare
from zhbench.engines.registry import load_engine

QUESTION = [{"role": "user", "content": "你好"}]


@pytest.fixture
def four_cores(monkeypatch):
    """A share of four cores (whatever this machine has), torch's own count restored afterwards."""
    original = torch.get_num_threads()
    share = CpuShare(cores=4)
    monkeypatch.setattr(token_engine, "CPU_SHARE", share)
    yield share
    torch.set_num_threads(original)


def in_thread(function):
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=function()))
    thread.start()
    thread.join()
    return result["value"]


def test_threads_split_evenly_and_never_drop_below_one():
    share = CpuShare(cores=4)
    assert share.threads_each() == 4
    with share.taking_part():
        assert share.threads_each() == 4
        with share.taking_part():
            assert share.threads_each() == 2
            with share.taking_part(), share.taking_part(), share.taking_part():
                assert share.threads_each() == 1
    assert share.threads_each() == 4


def test_two_replies_at_once_each_run_on_half_the_cores(standin_dir, four_cores):
    path = str(standin_dir("dialogpt-zh"))
    first, second = load_engine(path, device="cpu"), load_engine(path, device="cpu")
    both_running = threading.Barrier(2, timeout=30)
    first_done = threading.Event()
    seen: dict[str, list[int]] = {"first": [], "second": []}

    def watch(engine, name):
        decode = engine.decode_reply
        engine.end_ids = frozenset()  # a reply of exactly max_new_tokens

        def decode_and_record(ids):
            if len(ids) == 1:
                both_running.wait()
            elif name == "second" and len(ids) == 2:
                assert first_done.wait(timeout=30)
            else:
                seen[name].append(torch.get_num_threads())  # the generating thread's count
            return decode(ids)

        engine.decode_reply = decode_and_record

    watch(first, "first")
    watch(second, "second")
    params = first.default_params().with_overrides({"max_new_tokens": 4})

    def answer_first():
        first.reply(QUESTION, params)
        first_done.set()

    threads = [threading.Thread(target=answer_first), threading.Thread(target=second.reply, args=(QUESTION, params))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen["first"] == [2, 2, 2]  # the second reply was running all along
    assert seen["second"] == [4, 4]  # alone after the first ended: every core again
    assert in_thread(torch.get_num_threads) == 4  # a thread started later is not left with a share
