"""``python -m nalu_sr.cli``: the same as the ``nalu-sr`` executable."""

from .app import main

main()
