"""Settings shared by the whole suite."""

from hypothesis import settings

# Property tests draw the same examples on every run and every machine, so a
# failure seen once is seen again, and CI never meets an example no one ran here.
settings.register_profile("nalu-sr", derandomize=True, database=None)
settings.load_profile("nalu-sr")


# The checks at default settings each run a whole search plan (one to three minutes). Run
# first, they overlap the rest of the suite on the other worker instead of leaving one
# worker busy alone at the end.
LONG_RUNNING = ("test_passes_sklearn_check_with_default_settings",)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.originalname not in LONG_RUNNING)
