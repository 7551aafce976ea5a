"""Test support for Python tests: a real kvstored on a free loopback port,
and pytest run so that Bazel reads its JUnit XML.

    with Daemon(["--host_capacity=64MiB"]) as d:
        client = kvcache.Client(d.address)
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def runfile(path):
    """Absolute path of `path` (workspace-relative) in the test's runfiles,
    or in the source/bazel-bin tree when run by hand."""
    roots = []
    if os.environ.get("TEST_SRCDIR"):
        roots.append(os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", "kvcache")))
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(os.path.dirname(here))
    roots += [top, os.path.join(top, "bazel-bin")]
    for root in roots:
        candidate = os.path.join(root, path)
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{path} not found under {roots}")


def use_portable_backend():
    """Makes `import kvcache` use the C ABI through ctypes
    (kvcache/_portable.py) instead of the extension; call before importing
    kvcache."""
    os.environ["KVCACHE_BACKEND"] = "portable"
    if not os.environ.get("KVCACHE_C_LIB"):
        os.environ["KVCACHE_C_LIB"] = runfile("client/c_api/libkvcache_c.so")


class Daemon:
    """A kvstored child process on 127.0.0.1, port chosen by the kernel.
    Stopped (SIGTERM, then SIGKILL) by stop() or on leaving a with block."""

    def __init__(self, flags=(), binary="kvstore/kvstored", timeout_s=30):
        self._dir = tempfile.mkdtemp(prefix="kvstored-test-")
        port_file = os.path.join(self._dir, "port")
        self.log_path = os.path.join(self._dir, "kvstored.log")
        args = [
            binary if os.path.isabs(binary) or os.path.exists(binary) else runfile(binary),
            "--listen=127.0.0.1:0",
            f"--port_file={port_file}",
            f"--local_socket={os.path.join(self._dir, 'local.sock')}",
            "--drain_timeout_s=2",
            "--noprefault",
            *flags,
        ]
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"kvstored exited with {self.process.returncode}:\n{self.log()}")
            try:
                with open(port_file) as f:
                    port = f.read().strip()
                if port:
                    break
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"kvstored did not start:\n{self.log()}")
            time.sleep(0.02)
        self.address = f"127.0.0.1:{port}"

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def kill(self):
        """SIGKILL: the daemon dies as in a crash."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self):
        """SIGTERM (SIGKILL after 10 s), then removes its folder (log included)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def main(test_file, extra_args=()):
    """Runs pytest on `test_file`; JUnit XML goes where Bazel looks for it."""
    import pytest

    args = [test_file, "-q", "-p", "no:cacheprovider", *extra_args]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    sys.exit(pytest.main(args))
