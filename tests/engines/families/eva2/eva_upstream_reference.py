"""Where the upstream EVA outputs in ``test_eva2.py`` come from, and how to make them again.

Not run by the test suite: it needs transformers 4.26 and upstream's own model code, which current
transformers cannot run. To reproduce (nothing of upstream is copied into zhbench):

    OLD=/tmp/venv426/bin/python; REF=tests/engines/families/eva2/eva_upstream_reference.py  # from the project root
    python -m venv --system-site-packages /tmp/venv426
    /tmp/venv426/bin/pip install "transformers==4.26.1" "tokenizers==0.13.3" "huggingface_hub<0.20"
    git -C EVA archive huggingface src/model | tar -x -C /tmp/eva-upstream    # thu-coai/EVA@a9c15c9
    python -m zhbench make-tiny eva2 /tmp/tiny-eva
    python -c "from tests.engines.families.eva2.eva_upstream_reference import write_eos_prone_copy as w; \\
               from pathlib import Path; w(Path('/tmp/tiny-eva'), Path('/tmp/eos-prone'))"
    PYTHONPATH=. $OLD $REF /tmp/eos-prone /tmp/eva-upstream/src 40 1,2,3,4,5,6

It prints upstream's ``generate()`` output for each seed, called as ``src/eva_interactive.py`` calls it
with ``src/scripts/eva_inference_interactive.sh``'s arguments (and ``max_length`` as given), plus the
same call without sampling. The tokenizer's ids and text in ``test_eva_tokenizer.py`` come from

    PYTHONPATH=. $OLD $REF --tokens VOCAB_DIR /tmp/eva-upstream/src     # VOCAB_DIR holds the real vocab.txt
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

QUESTION = "你好，今天天气怎么样？"
#: the end token's logit on the reply's average state: high enough that some replies end early
END_LOGIT = 10.5


def write_eos_prone_copy(source: Path, target: Path) -> Path:
    """A copy of a stand-in whose ``<sep>`` row of ``lm_head`` points along the decoder's average state.

    Random stand-ins almost never emit ``<sep>``; this one often does, so beam search's finished
    hypotheses, length penalty and stopping rule are all exercised.
    """
    import torch

    from zhbench.engines.registry import load_engine

    shutil.copytree(source, target, dirs_exist_ok=True)
    engine = load_engine(str(source), family="eva2", device="cpu")
    prompt = torch.tensor([engine.prompt_for([{"role": "user", "content": QUESTION}]).input_ids])
    with torch.no_grad():
        encoded = engine.model.encoder(prompt).last_hidden_state
        reply = torch.tensor([[engine.tokenizer.reply_start_id, 11, 12, 13, 14, 15, 16, 17]])
        average = engine.model.decoder(reply, encoder_hidden_states=encoded).last_hidden_state[0].mean(0)
    state = torch.load(target / "pytorch_model.bin", weights_only=True)
    state["lm_head.weight"][engine.tokenizer.sep_id] = (average / average.dot(average) * END_LOGIT).half()
    torch.save(state, target / "pytorch_model.bin")
    return target


def upstream_outputs(folder: str, upstream_src: str, max_length: int, seeds: list[int]) -> dict[str, list[int]]:
    """Upstream's EVATokenizer and EVAModel on transformers 4.26 (run in that environment)."""
    import torch

    sys.path.insert(0, upstream_src)
    from model import EVAModel, EVATokenizer  # upstream's package, from its checkout

    tokenizer = EVATokenizer.from_pretrained(folder)
    model = EVAModel.from_pretrained(folder).eval()
    context = torch.tensor([[*tokenizer.encode(QUESTION), tokenizer.bos_token_id]])
    shared = {"max_length": max_length, "min_length": 2, "no_repeat_ngram_size": 3, "encoder_no_repeat_ngram_size": 3}
    outputs = {}
    for name, sampling in (
        ("beam_sample", {"do_sample": True, "temperature": 0.9, "top_k": 0, "top_p": 0.9}),
        ("beam_search", {"do_sample": False}),
    ):
        for seed in seeds:
            torch.manual_seed(seed)
            with torch.no_grad():
                generated = model.generate(
                    context,
                    num_beams=4,
                    length_penalty=1.6,
                    repetition_penalty=1.6,
                    use_cache=True,
                    **shared,
                    **sampling,
                )
            outputs[f"{name}-{seed}"] = generated[0].tolist()
    return outputs


def upstream_tokens(folder: str, upstream_src: str) -> dict[str, object]:
    """Upstream's ``encode`` of the texts and ``decode`` of the id lists that ``test_eva_tokenizer.py`` checks."""
    sys.path.insert(0, upstream_src)
    from model import EVATokenizer  # upstream's package, from its checkout

    from tests.engines.families.eva2.test_eva_tokenizer import UPSTREAM_DECODE, UPSTREAM_ENCODE

    tokenizer = EVATokenizer.from_pretrained(folder)
    return {
        "encode": {text: tokenizer.encode(text) for text in UPSTREAM_ENCODE},
        "decode": [[ids, tokenizer.decode(ids, skip_special_tokens=True)] for ids, _ in UPSTREAM_DECODE],
    }


if __name__ == "__main__":
    if sys.argv[1] == "--tokens":
        print(json.dumps(upstream_tokens(sys.argv[2], sys.argv[3]), ensure_ascii=False))
        sys.exit(0)
    folder, upstream_src, max_length, seeds = sys.argv[1:5]
    print(json.dumps(upstream_outputs(folder, upstream_src, int(max_length), [int(s) for s in seeds.split(",")])))
