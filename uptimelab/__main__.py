"""``python -m uptimelab``: the same CLI as the ``uptimelab`` command."""

from .cli import main

main()
