"""Stopping a Flower run cleanly: the server's stop event reaches the ServerApp's round loop.

Flower's ``Strategy.start`` has no stop hook, and ``Grid.send_and_receive`` waits for every reply
(up to the round's timeout). :class:`StoppableGrid` wraps the ServerApp's grid with the same
push-then-poll loop as Flower's grids (``push_messages``, then ``pull_messages`` at the grid's
interval until every reply is in or the timeout passes), waiting on ``stop`` between polls, and raises
:class:`RunInterrupted` once it is set; the strategy raises it too before it plans a round. The
ServerApp's main function catches it and returns the completed rounds, which ends the ServerApp
thread, which makes Flower's simulation engine stop its workers and its Ray backend.
"""

from __future__ import annotations

import threading
import time


class RunInterrupted(Exception):
    """The run was asked to stop (``FederationServer.stop``); the completed rounds stand."""


class StoppableGrid:
    """A Flower ``Grid`` whose ``send_and_receive`` gives up once ``stop`` is set (module doc).
    Every other attribute is the wrapped grid's."""

    def __init__(self, grid, stop: threading.Event) -> None:
        self._grid = grid
        self._stop = stop

    def __getattr__(self, name):
        return getattr(self._grid, name)

    def send_and_receive(self, messages, *, timeout: float | None = None):
        if self._stop.is_set():
            raise RunInterrupted
        msg_ids = set(self._grid.push_messages(messages))
        end = None if timeout is None else time.monotonic() + timeout
        replies = []
        # the wrapped grid's own polling interval (in-memory: pull_interval; Flower's HTTP grid sleeps 3 s)
        interval = float(getattr(self._grid, "pull_interval", 3.0))
        while msg_ids and (end is None or time.monotonic() < end):
            got = list(self._grid.pull_messages(msg_ids))
            replies.extend(got)
            msg_ids.difference_update(m.metadata.reply_to_message_id for m in got)
            if msg_ids and self._stop.wait(interval):
                raise RunInterrupted
        return replies
