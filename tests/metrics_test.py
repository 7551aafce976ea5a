"""kvstored's Prometheus metrics, checked as an operator would: /metrics of a
live daemon parsed by the stock parser (python3-prometheus-client), and
scraped by a real Prometheus (Debian's prometheus) started here, after a
known workload whose counts the scraped values must match."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kvcache_testing import Daemon, main, runfile
from raw_wire import decode_fields, field_bytes, key, lookup_hits, put, put_block, unary

BLOCK = 64 << 10
NS = b"metrics-ns"
STATS_METRICS_ADDRESS = 33  # StatsResponse.metrics_address


def metrics_address(channel):
    fields = decode_fields(unary(channel, "Stats", b""))
    return next(v for n, w, v in fields if n == STATS_METRICS_ADDRESS).decode()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text):
    """{(name, ((label, value), ...)): value} of every sample, parsed by the
    stock parser (which raises on anything out of format)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def evict_key(channel, ns, k):
    unary(channel, "Evict", field_bytes(1, field_bytes(1, ns) + field_bytes(2, k)))


def workload(channel):
    """A chain of 5 blocks stored; a lookup of 8 keys (5 hit, then a block
    never stored); the last block evicted by an operator; a lookup of the 5
    (4 hit, then the evicted one)."""
    chain = [put_block(NS, key(0), b"\x00" * BLOCK)]
    for i in range(1, 5):
        chain.append(put_block(NS, key(i), bytes([i]) * BLOCK, parent=key(i - 1)))
    put(channel, chain)
    assert lookup_hits(channel, NS, [key(i) for i in range(8)]) == 5
    evict_key(channel, NS, key(4))
    assert lookup_hits(channel, NS, [key(i) for i in range(5)]) == 4


def misses(op, reason):
    return ("kvstored_misses_total", (("op", op), ("reason", reason)))


# What the workload must move, from a fresh daemon.
EXPECTED = {
    ("kvstored_puts_total", (("result", "stored"),)): 5,
    ("kvstored_lookups_total", ()): 2,
    ("kvstored_lookup_keys_total", ()): 13,
    ("kvstored_lookup_hit_keys_total", ()): 9,
    ("kvstored_tier_misses_total", (("tier", "host"),)): 4,
    misses("lookup", "never_stored"): 1,
    misses("lookup", "evicted_operator"): 1,
    misses("lookup", "evicted_pressure"): 0,
    misses("fetch", "never_stored"): 0,
    ("kvstored_tier_blocks", (("tier", "host"),)): 4,
    ("kvstored_tenant_blocks", (("tenant", "default"),)): 4,
    ("kvstored_tenant_bytes", (("tenant", "default"),)): 4 * BLOCK,
    ("kvstored_tier_bytes_in_total", (("tier", "host"),)): 5 * BLOCK,
    ("kvstored_request_bytes_total", (("op", "put"), ("path", "grpc"))): 5 * BLOCK,
    ("kvstored_request_bytes_total", (("op", "fetch"), ("path", "grpc"))): 0,
    ("kvstored_request_duration_seconds_count", (("op", "lookup"), ("path", "grpc"))): 2,
    ("kvstored_request_duration_seconds_count", (("op", "put"), ("path", "grpc"))): 1,
    ("kvstored_pinned_bytes", ()): 0,
    ("kvstored_staged_bytes", ()): 0,
    ("kvstored_leases_held", ()): 0,
}


@pytest.fixture
def daemon():
    with Daemon(["--metrics_listen=127.0.0.1:0", "--host_capacity=64MiB", "--page_size=64KiB"]) as d:
        yield d


def test_metrics_parse_and_count_a_known_workload(daemon):
    channel = grpc.insecure_channel(daemon.address)
    address = metrics_address(channel)
    status, content_type, text = get(f"http://{address}/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=0.0.4")
    assert samples(text)[("kvstored_tier_blocks", (("tier", "host"),))] == 0
    workload(channel)
    after = samples(get(f"http://{address}/metrics")[2])
    for series, value in EXPECTED.items():
        assert after[series] == value, series
    assert after[("kvstored_tier_used_bytes", (("tier", "host"),))] >= 4 * BLOCK
    assert after[("kvstored_tier_capacity_bytes", (("tier", "host"),))] == 64 << 20
    assert after[("kvstored_uptime_seconds", ())] >= 0
    assert any(name == "kvstored_build_info" for name, _ in after)
    # The one lookup's latency is in a bucket, and +Inf holds every request.
    lookup = (("op", "lookup"), ("path", "grpc"))
    assert after[("kvstored_request_duration_seconds_bucket", (("le", "+Inf"),) + lookup)] == 2
    assert after[("kvstored_request_duration_seconds_sum", lookup)] > 0
    assert get(f"http://{address}/other")[0] == 404


def test_request_metrics_off_records_no_latency_and_names_no_miss():
    """What kvbench metrics compares against: the same daemon, timing off."""
    with Daemon(["--metrics_listen=127.0.0.1:0", "--request_metrics=false",
                 "--drop_record_entries=0"]) as d:
        channel = grpc.insecure_channel(d.address)
        workload(channel)
        after = samples(get(f"http://{metrics_address(channel)}/metrics")[2])
        assert after[("kvstored_lookups_total", ())] == 2  # plain counters still count
        assert all(v == 0 for (name, _), v in after.items()
                   if name in ("kvstored_request_duration_seconds_count", "kvstored_misses_total"))


PATHS = {  # kvcache.Client options that take one path (same host: every fetch a lease)
    "same_host": {"use_direct_reads": False},
    "data_port": {"use_local_path": False},
    "grpc": {"use_local_path": False, "use_data_port": False},
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_each_path_counts_its_own_fetches_and_puts(daemon, path):
    import kvcache  # the client library's binding

    channel = grpc.insecure_channel(daemon.address)
    address = metrics_address(channel)
    count = "kvstored_request_duration_seconds_count"
    before = samples(get(f"http://{address}/metrics")[2])
    schema = kvcache.KeySchema(model_id="metrics/model", weights_revision=path, kv_dtype="fp16")
    keys = kvcache.chain_keys(schema, list(range(16 * 3)))
    with kvcache.Client(daemon.address, **PATHS[path]) as c:
        assert c.put(schema.namespace, None, keys, [bytes([i]) * BLOCK for i in range(3)]).stored == 3
        # A lease per fetch on the same host: no block directory copies.
        got = c.fetch(schema.namespace, keys, [bytearray(BLOCK) for _ in range(3)])
        assert got.blocks == 3
    after = samples(get(f"http://{address}/metrics")[2])

    def moved(p, op):
        series = (count, (("op", op), ("path", p)))
        return after[series] - before[series]

    assert moved(path, "put") >= 1
    assert moved(path, "fetch") >= 1
    # Puts went no other way (lookups and fetches may fall back, puts not here).
    assert all(moved(p, "put") == 0 for p in PATHS if p != path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """Debian's prometheus scraping `target` every second, on a free port."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="prometheus-test-")
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: kvstored\n"
                    f"    static_configs:\n      - targets: ['{target}']\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.process = subprocess.Popen(
            [shutil.which("prometheus") or "/usr/bin/prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address={self.url[len('http://'):]}"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def answer(self, expr):
        """Prometheus' JSON answer to the instant query `expr`, or None."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:  # a query Prometheus refuses: its reason
            return json.load(e)
        except (urllib.error.URLError, ConnectionError):
            return None

    def query(self, expr):
        """The instant value of `expr` (one series), or None."""
        answer = self.answer(expr)
        result = answer["data"]["result"] if answer and answer.get("status") == "success" else []
        return float(result[0]["value"][1]) if len(result) == 1 else None

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_a_real_prometheus_scrapes_what_was_done(daemon):
    channel = grpc.insecure_channel(daemon.address)
    workload(channel)
    prometheus = Prometheus(metrics_address(channel))
    try:
        want = {'kvstored_puts_total{result="stored"}': 5, "kvstored_lookup_keys_total": 13,
                "kvstored_lookup_hit_keys_total": 9, 'kvstored_tier_misses_total{tier="host"}': 4,
                'kvstored_misses_total{op="lookup",reason="never_stored"}': 1,
                'kvstored_misses_total{op="lookup",reason="evicted_operator"}': 1,
                'sum(kvstored_misses_total{op="lookup"})': 2,
                'kvstored_request_bytes_total{path="grpc",op="put"}': 5 * BLOCK,
                'kvstored_tenant_bytes{tenant="default"}': 4 * BLOCK,
                'kvstored_tier_blocks{tier="host"}': 4, 'up{job="kvstored"}': 1}
        got = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            got = {expr: prometheus.query(expr) for expr in want}
            if got == want:
                break
            assert prometheus.process.poll() is None, "prometheus exited"
            time.sleep(0.5)
        assert got == want

        # Every query of the Grafana dashboard is valid PromQL, and every
        # kvstored metric it names is one the daemon exports.
        exported = {name for name, _ in samples(get(f"http://{metrics_address(channel)}/metrics")[2])}
        with open(runfile("tools/grafana/kvstored.json")) as f:
            dashboard = json.load(f)
        exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
        assert len(exprs) >= 10
        for expr in exprs:
            for name in re.findall(r"kvstored_[a-z_]+", expr):
                assert name in exported, (name, expr)
            answer = prometheus.answer(expr.replace("$__rate_interval", "1m"))
            assert answer and answer["status"] == "success", (expr, answer)
    finally:
        prometheus.stop()


if __name__ == "__main__":
    main(__file__)
