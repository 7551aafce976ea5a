"""engine_test.py's cases with the client through its C ABI and ctypes
(kvcache/_portable.py): how the GPU kit runs the engine with a device
machine's own Python and torch."""

import os

from kvcache_testing import main, use_portable_backend

if __name__ == "__main__":
    use_portable_backend()
    import kvcache

    assert kvcache.BACKEND == "portable", kvcache.BACKEND
    main(os.path.join(os.path.dirname(os.path.abspath(__file__)), "engine_test.py"))
