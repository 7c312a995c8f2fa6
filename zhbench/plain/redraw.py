"""The pace a streaming reply is drawn at, shared by the pane that draws it and the worker that sends it."""

from __future__ import annotations

#: how often a streaming reply is redrawn at most: ten times a second, not once per token (every frame
#: repaints the screen around the reply too, on the thread the generating threads share the GIL with)
FLUSH_INTERVAL_S = 1 / 10
