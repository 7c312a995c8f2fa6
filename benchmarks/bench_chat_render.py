"""What bounding a chat template's render costs: the same template and conversation rendered by Jinja's
sandbox alone and by ``engines.local.chat_render`` (a deadline traced on each line the template runs, the
output counted, ``*`` ``+`` ``**`` ``~`` checked), interleaved, for each real template in
``../shared/data/chat/templates``; and transformers' ``apply_chat_template`` (rendering only, no tokens) for
reference. A prompt is rendered 2-3 times per turn (``build_prompt``), more when a long chat is cut.

    python benchmarks/bench_chat_render.py [--turns 41] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from zhbench.engines.local.chat_render import ChatTemplate, _compile

TEMPLATES = Path(__file__).resolve().parents[2] / "shared" / "data" / "chat" / "templates"


def per_render_ms(render: Callable[[], object], rounds: int) -> float:
    render()
    started = time.perf_counter()
    for _ in range(rounds):
        render()
    return (time.perf_counter() - started) / rounds * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=41)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    from transformers.utils.chat_template_utils import render_jinja_template

    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"第{i}句，话说{i}遍。"} for i in range(args.turns)
    ]
    variables = {"bos_token": "<s>", "eos_token": "</s>"}
    print(f"{'template':<48} {'sandbox ms':>10} {'bounded ms':>10} {'ratio':>6} {'transformers ms':>15}")
    ratios = []
    for path in sorted(TEMPLATES.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        bounded = ChatTemplate(source, model=path.stem, origin=path.name)
        context = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": True}

        def sandbox(source: str = source, context: dict[str, object] = context) -> object:
            return _compile(source).render(**context, **variables)

        def limited(bounded: ChatTemplate = bounded) -> object:
            return bounded.render(messages, **variables)

        def upstream(source: str = source) -> object:
            return render_jinja_template([messages], chat_template=source, add_generation_prompt=True, **variables)

        plain, checked = [], []
        for _ in range(3):  # interleaved, so a busy machine weighs on both alike
            plain.append(per_render_ms(sandbox, args.rounds))
            checked.append(per_render_ms(limited, args.rounds))
        ratio = statistics.median(checked) / statistics.median(plain)
        ratios.append(ratio)
        reference = per_render_ms(upstream, args.rounds)
        print(
            f"{path.stem:<48} {statistics.median(plain):>10.2f} {statistics.median(checked):>10.2f} "
            f"{ratio:>6.2f} {reference:>15.2f}"
        )
    print(f"median ratio bounded/sandbox: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
