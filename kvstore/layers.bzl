"""Who may depend on the daemon's layers (kvstore/index, tiers, store, server)."""

# The layers above within kvstore/, replica repair above them, and the tests
# and tools that drive them.
LAYER_VISIBILITY = [
    "//kvstore:__subpackages__",
    "//repair:__pkg__",
    "//tests:__pkg__",
    "//tools:__subpackages__",
]
