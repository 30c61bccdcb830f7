"""The collector tells people: the transitions of every batch its writer stores go to a notifier.

The :class:`~uptimelab.notify.notifier.Notifier` is made with the writer of a session (a
collector's :meth:`~uptimelab.collector.collector.Collector.session`), before the writer opens,
so that the transitions of a spool replayed on opening reach it too. The schedule runs it in its
nursery; what is left when the session ends is recorded and sent by its ``flush``.
"""

from __future__ import annotations

from ..config import Settings
from ..notify.notifier import Notifier
from ..storage.writer import Writer


def notifier_for(writer: Writer, settings: Settings) -> Notifier:
    """A notifier fed by ``writer``: it records its messages through the writer's transactions,
    and is offered the transitions of each batch the writer stores (directly or replayed from
    the spool), after its commit."""
    notifier = Notifier(writer.transact, settings)
    writer.on_transitions = notifier.offer
    return notifier
