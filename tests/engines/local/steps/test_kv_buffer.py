"""GrowingBuffer gives what torch.cat gives, writing in place only where that cannot show."""

from __future__ import annotations

import torch

from zhbench.engines.local.steps.kv_buffer import FIRST_CAPACITY, GrowingBuffer


def token(value: float) -> torch.Tensor:
    return torch.full((1, 2, 1, 3), value)


def test_extending_matches_concatenation_through_growth_crops_and_foreign_tensors():
    buffer = GrowingBuffer()
    held = expected = torch.zeros((1, 2, 5, 3))  # a prompt's keys, made elsewhere (by the model's forward)
    for step in range(2 * FIRST_CAPACITY):  # past the first size and a doubling
        held, expected = buffer.extended(held, token(step)), torch.cat([expected, token(step)], dim=-2)
        assert torch.equal(held, expected)
        if step == 40:  # a regenerated reply: the cache is cropped and decoding goes on from there
            held, expected = held[..., :30, :], expected[..., :30, :]
        if step == 90:  # a new prompt run by the forward: a new tensor that is not the buffer
            held = expected = torch.cat([expected, torch.ones((1, 2, 4, 3))], dim=-2)


def test_a_view_handed_out_earlier_is_not_overwritten_while_its_tokens_are_held():
    buffer = GrowingBuffer()
    first = buffer.extended(torch.zeros((1, 2, 0, 3)), token(1.0))
    second = buffer.extended(first, token(2.0))
    assert torch.equal(first, token(1.0))  # writing the second token left the first view's token alone
    assert torch.equal(second, torch.cat([token(1.0), token(2.0)], dim=-2))


def test_reordering_beams_matches_index_select_and_keeps_writing_in_place():
    buffer = GrowingBuffer()
    held = expected = torch.zeros((3, 2, 0, 3))
    for step in range(5):
        new = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 2, 1, 3) + 10 * step  # each beam its own values
        held, expected = buffer.extended(held, new), torch.cat([expected, new], dim=-2)
        beams = torch.tensor([2, 0, 0])
        held, expected = buffer.reordered(held, beams), expected.index_select(0, beams)
        assert torch.equal(held, expected)
