"""Models found in extra folders: a folder with hostile links in it is listed, never a crash (issue 18, item 23)."""

from __future__ import annotations

import shutil

from zhbench.engines.hub.discovery import folder_size, local_models


def test_symlink_loops_and_dangling_links_are_skipped(standin_dir, tmp_path):
    model = tmp_path / "models" / "tiny"
    shutil.copytree(standin_dir("gpt2-dialogbot"), model)
    size = folder_size(model)
    (model / "loop").symlink_to("loop")  # a link to itself
    (model / "a").symlink_to("b")  # two links to each other
    (model / "b").symlink_to("a")
    (model / "gone").symlink_to("nowhere")
    (model / "again.bin").symlink_to("pytorch_model.bin")  # a second name for a file: counted once
    (tmp_path / "models" / "self").symlink_to("self")  # a loop beside the models
    (tmp_path / "models" / "self.pth").symlink_to("self.pth")
    assert folder_size(model) == size
    [found] = local_models([tmp_path / "models"])
    assert (found.family, found.path, found.size_bytes) == ("gpt2-dialogbot", model, size)
