"""Net effect: what a batch of file events did to the tree, not the writer's choreography.

Editors and tools rarely save in place. ``sed -i``, ``rsync``, Python's
``tempfile`` + ``os.replace``, IDE "safe write" and GNOME editors write a
temporary file and rename it over the target; vim and emacs move the target
to a backup and write a new file. Raw events then name temporary files and
report the target as deleted and created again. ``net_effect`` folds a batch
into one event per path, judged only by where each path started and ended:

- a path created and then removed or renamed away within the batch never
  existed (whatever its name: no list of editor names is needed for this);
- a rename onto a path, or a removal followed by a new file, is that path
  *modified* (a rename cannot tell a new name from a replaced one, so a
  rename onto a name is always reported as a modification);
- a path that existed and is gone at the end is *deleted*.

Backup, swap and lock files that outlive the batch (``name~``, ``.name.swp``)
are left to the routes' ignore patterns (``DEFAULT_IGNORES``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .event import Action, Event, FileEvent

_APPEARS = frozenset({Action.CREATED, Action.MODIFIED, Action.MOVED_TO})


def net_effect(events: Iterable[Event]) -> list[Event]:
    """One event per path for what the batch changed, in the order of each path's last event.

    Plain ``Event``s (not file events) pass through unchanged, in place.
    """
    # key -> [existed before the batch, exists after it, last event]; dict order = last occurrence
    states: dict[object, list[Any]] = {}
    for event in events:
        if not isinstance(event, FileEvent):
            states.pop(id(event), None)
            states[id(event)] = [None, None, event]
            continue
        key = (event.endpoint, event.name)
        state = states.pop(key, None)
        if state is None:
            # Only a plain CREATED says the path was new; a rename onto it may replace a file.
            state = [event.action is not Action.CREATED, False, event]
        state[1] = event.action in _APPEARS
        state[2] = event
        states[key] = state
    out: list[Event] = []
    for existed, exists, event in states.values():
        if existed is None:
            out.append(event)
        elif exists:
            action = Action.MODIFIED if existed else Action.CREATED
            out.append(_with_action(event, action))
        elif existed:
            out.append(_with_action(event, Action.DELETED))
    return out


def _with_action(event: FileEvent, action: Action) -> FileEvent:
    if event.action is action:
        return event
    return FileEvent(event.endpoint, event.name, action, event.is_dir)
