"""``python -m nalu_sr.datasets OUT_DIR`` regenerates the formula suite's tables."""

from .suite import main

main()
