"""Branches of a pane's conversation: editing an earlier message starts another branch from there.

Where a user message was edited, the conversation forks: each version of the message begins a branch of
its own, with everything that followed it (replies, their regenerated versions, later forks). The pane
shows one branch at each fork, the one it goes on from; the others are kept whole, to be shown again.

Plain state on ``PaneState.forks`` (``panes.Fork``), changed by ``Bench`` as the person edits and steps
between branches, and by a replay of the transcript (``replay.py``) the same way, so a reopened session
stands as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhbench.workbench.session.panes import Branch, Fork, PaneState, ShownEntry


@dataclass(frozen=True)
class BranchPlace:
    """Where a message that begins a branch stands among the branches at its fork (for exports)."""

    number: int  # 1, 2, … in the order they were made
    count: int
    #: the number of the branch the pane went on from
    shown: int

    @property
    def on_show(self) -> bool:
        return self.number == self.shown

    def to_json(self) -> dict[str, object]:
        return {"number": self.number, "of": self.count, "shown": self.on_show}


def fork_of(state: PaneState, message: str) -> Fork | None:
    """The fork where ``message`` begins a branch, if it does."""
    return next((fork for fork in state.forks if any(b.message == message for b in fork.branches)), None)


def on_path(state: PaneState, fork: Fork) -> bool:
    """Whether the pane shows ``fork`` now (it is not inside a branch set aside)."""
    return fork.shown_at < len(state.shown) and state.shown[fork.shown_at].record_id == fork.message


def forks_on_path(state: PaneState) -> list[Fork]:
    """The forks the pane's conversation on show passes, first to last."""
    return sorted((fork for fork in state.forks if on_path(state, fork)), key=lambda fork: fork.shown_at)


def branch_place(state: PaneState, entry: ShownEntry) -> tuple[int, int] | None:
    """``(number, count)`` of the branch a shown user message begins, or None where it was never edited."""
    fork = fork_of(state, entry.record_id) if entry.role == "user" and entry.record_id else None
    return fork.place() if fork is not None and on_path(state, fork) else None


def start_branch(state: PaneState, message: str, new_message: str) -> bool:
    """Set aside the pane's conversation from user message ``message`` on, as a branch to show again, for
    ``new_message`` (written in its place, the caller adds it next) to begin another; False (nothing done)
    when the pane shows no such message."""
    at = next((i for i, e in enumerate(state.shown) if e.role == "user" and e.record_id == message), None)
    if at is None:
        return False
    fork = fork_of(state, message)
    if fork is None:
        fork = Fork(at, _history_length(state.shown[:at]), [Branch(message)])
        state.forks.append(fork)
    _keep_branch_on_show(state, fork)
    del state.shown[fork.shown_at :], state.history[fork.history_at :]
    state.reply_versions, state.chosen_version = [], 0
    fork.branches.append(Branch(new_message))
    fork.chosen = len(fork.branches) - 1
    return True


def show_branch(state: PaneState, message: str) -> bool:
    """Show, and go on from, the branch that ``message`` begins; False (nothing done) when that branch's fork
    is not on show."""
    fork = fork_of(state, message)
    if fork is None or not on_path(state, fork):
        return False
    _keep_branch_on_show(state, fork)
    fork.chosen = next(i for i, branch in enumerate(fork.branches) if branch.message == message)
    branch = fork.branches[fork.chosen]
    state.shown[fork.shown_at :] = branch.shown
    state.history[fork.history_at :] = branch.history
    state.reply_versions, state.chosen_version = list(branch.reply_versions), branch.chosen_version
    return True


def other_branch(state: PaneState, step: int, message: str | None = None) -> str | None:
    """The message beginning the branch ``step`` branches from the one on show (-1: the one before) at the
    fork of the shown message ``message``, or at the last fork the conversation passes; None when there is
    none that way."""
    forks = forks_on_path(state)
    if message is not None:
        forks = [fork for fork in forks if fork.message == message]
    if not forks:
        return None
    fork = forks[-1]
    index = fork.chosen + step
    return fork.branches[index].message if 0 <= index < len(fork.branches) else None


def branch_places(state: PaneState) -> dict[str, BranchPlace]:
    """Every message that begins a branch, by id: its place at its fork."""
    return {
        branch.message: BranchPlace(number, len(fork.branches), fork.chosen + 1)
        for fork in state.forks
        for number, branch in enumerate(fork.branches, 1)
    }


def set_aside(state: PaneState) -> set[str]:
    """The ids of every message and reply on a branch not on show (inside one, whichever branch its own forks
    show): what an export of the conversation as shown leaves out."""
    found: set[str] = set()
    for fork in state.forks:
        for index, branch in enumerate(fork.branches):
            if index != fork.chosen:
                found |= {entry.record_id for entry in [*branch.shown, *branch.reply_versions] if entry.record_id}
    return found


def _keep_branch_on_show(state: PaneState, fork: Fork) -> None:
    """Copy what the pane shows from ``fork`` on into the branch on show there, before it is set aside."""
    branch = fork.branches[fork.chosen]
    branch.shown, branch.history = state.shown[fork.shown_at :], state.history[fork.history_at :]
    branch.reply_versions, branch.chosen_version = list(state.reply_versions), state.chosen_version


def _history_length(shown: list[ShownEntry]) -> int:
    """How many messages of the conversation's history ``shown`` holds: every user message, and every reply
    that was fed back (a failed one was not)."""
    return sum(1 for entry in shown if entry.role == "user" or entry.fed_back is not None)
