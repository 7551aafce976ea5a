"""Time to first token with and without kvcache, side by side in one run.

Starts its own kvstored on loopback. For each prompt length and each of
--runs rounds: a new prompt is run cold (lookup misses, full prefill, its
blocks stored after the first token), then warm twice, over the same-host
path and over the data port (lookup, fetch into the paged cache, compute
of the rest: the last token). Every warm request must generate exactly the
cold one's tokens. Reports medians: TTFT cold and warm, the speedup, the
fetched GB/s and where the warm time goes.

Then the binding's cost: fetches of 2 MiB blocks called from Python
(fetch_into and fetch into numpy arrays) against the same fetches looped
in C++, alternating, on both paths.

    bazel run --config=opt //tools/engine:bench -- --out=docs/bench
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

import kvcache
from connector import KvcacheConnector
from engine import Engine
from kvcache_testing import Daemon
from model import LlamaModel, ModelConfig

PATHS = {"same-host": {}, "data port": {"use_local_path": False}}


def ttft_rounds(daemon, config, model, lengths, runs, new_tokens, device=None):
    engines = {
        name: Engine(config, KvcacheConnector(kvcache.Client(daemon.address, **opts), config),
                     model=model, num_pages=max(lengths) // 16 + 8, device=device)
        for name, opts in PATHS.items()
    }
    cold_engine = engines["same-host"]
    rows = []
    seed = 1000
    for length in lengths:
        samples = {"cold": []}
        for name in PATHS:
            samples[name] = []
        for r in range(runs):
            seed += 1
            rng = random.Random(seed)
            prompt = [rng.randrange(config.vocab_size) for _ in range(length)]
            cold = cold_engine.generate(prompt, new_tokens)
            if cold.restored_tokens != 0 or cold.saved_blocks != length // 16:
                raise RuntimeError(f"cold run of a new prompt restored {cold.restored_tokens} "
                                   f"and stored {cold.saved_blocks} blocks")
            samples["cold"].append(cold)
            for name, engine in engines.items():
                warm = engine.generate(prompt, new_tokens)
                if warm.tokens != cold.tokens:
                    raise RuntimeError(f"{name}: warm tokens differ from cold at {length} tokens")
                if warm.restored_tokens != length - 1:
                    raise RuntimeError(f"{name}: restored {warm.restored_tokens} of {length}")
                samples[name].append(warm)
            print(f"  {length:5d} tokens, round {r + 1}/{runs}: cold {cold.ttft_s * 1e3:7.1f} ms, "
                  + ", ".join(f"{n} {samples[n][-1].ttft_s * 1e3:6.1f} ms" for n in PATHS),
                  flush=True)
        med = lambda xs: statistics.median(xs)  # noqa: E731
        row = {"tokens": length, "restored_bytes": (length // 16) * engines["same-host"].connector.block_bytes,
               "cold_ttft_ms": med([g.ttft_s for g in samples["cold"]]) * 1e3}
        for name in PATHS:
            gens = samples[name]
            key = name.replace(" ", "_").replace("-", "_")
            ttft = med([g.ttft_s for g in gens])
            fetch = med([g.timings["fetch"] for g in gens])
            row[f"{key}_ttft_ms"] = ttft * 1e3
            row[f"{key}_speedup"] = row["cold_ttft_ms"] / (ttft * 1e3)
            row[f"{key}_lookup_ms"] = med([g.timings["lookup"] for g in gens]) * 1e3
            row[f"{key}_fetch_ms"] = fetch * 1e3
            row[f"{key}_compute_ms"] = med([g.timings["compute"] for g in gens]) * 1e3
            row[f"{key}_fetch_gbps"] = row["restored_bytes"] / fetch / 1e9
        rows.append(row)
    for e in engines.values():
        e.connector.client.close()
    return rows


def binding_rounds(daemon, runs, blocks=8, block_bytes=2 << 20, seconds=0.5):
    schema = kvcache.KeySchema(model_id="bench/binding")
    keys = kvcache.chain_keys(schema, list(range(16 * blocks)))
    payload = np.random.default_rng(0).integers(0, 256, block_bytes * blocks, dtype=np.uint8)
    dest = np.zeros_like(payload)
    arrays = [dest[i * block_bytes:(i + 1) * block_bytes] for i in range(blocks)]
    ptrs = [dest.ctypes.data + i * block_bytes for i in range(blocks)]
    sizes = [block_bytes] * blocks
    out = []
    for name, opts in PATHS.items():
        with kvcache.Client(daemon.address, **opts) as c:
            ns = schema.namespace
            c.put_from(ns, None, keys, [payload.ctypes.data + i * block_bytes for i in range(blocks)], sizes)
            assert c.fetch_into(ns, keys, ptrs, sizes).blocks == blocks
            # Calls of one block (2 MiB) and of the whole 8-block prefix.
            for per_call in (1, blocks):
                k, p, s, a = keys[:per_call], ptrs[:per_call], sizes[:per_call], arrays[:per_call]
                # Iterations for about `seconds` per slice.
                t = c._fetch_loop_seconds(ns, k, p, s, 5)
                iters = max(5, int(seconds / max(t / 5, 1e-6)))
                # The three loops take turns going first, round by round, and
                # each round's ratios come from its own side-by-side slices:
                # drift on this shared VM then favours no one.
                def cc_loop():
                    return c._fetch_loop_seconds(ns, k, p, s, iters)

                def into_loop():
                    start = time.perf_counter()
                    for _ in range(iters):
                        c.fetch_into(ns, k, p, s)
                    return time.perf_counter() - start

                def numpy_loop():
                    start = time.perf_counter()
                    for _ in range(iters):
                        c.fetch(ns, k, a)
                    return time.perf_counter() - start

                loops = [cc_loop, into_loop, numpy_loop]
                times = {loop: [] for loop in loops}
                for r in range(runs):
                    for loop in loops[r % 3:] + loops[:r % 3]:
                        times[loop].append(loop())
                cc, py_into, py_np = times[cc_loop], times[into_loop], times[numpy_loop]
                gb = iters * per_call * block_bytes / 1e9
                row = {"path": name, "blocks_per_call": per_call,
                       "cc_gbps": statistics.median(gb / x for x in cc),
                       "fetch_into_gbps": statistics.median(gb / x for x in py_into),
                       "fetch_numpy_gbps": statistics.median(gb / x for x in py_np)}
                row["fetch_into_ratio"] = statistics.median(c_ / x for c_, x in zip(cc, py_into))
                row["fetch_numpy_ratio"] = statistics.median(c_ / x for c_, x in zip(cc, py_np))
                out.append(row)
    return out


def print_tables(ttft, binding):
    print("\nTime to first token (medians): cold = full prefill; warm = lookup + fetch + the last token")
    print(f"{'tokens':>6} {'KV MiB':>7} {'cold ms':>8} | {'same-host ms':>12} {'x':>6} {'lookup':>7} "
          f"{'fetch':>6} {'GB/s':>5} {'compute':>7} | {'data port ms':>12} {'x':>6} {'fetch':>6} {'GB/s':>5}")
    for r in ttft:
        print(f"{r['tokens']:6d} {r['restored_bytes'] / 2**20:7.0f} {r['cold_ttft_ms']:8.1f} | "
              f"{r['same_host_ttft_ms']:12.1f} {r['same_host_speedup']:5.1f}x {r['same_host_lookup_ms']:7.2f} "
              f"{r['same_host_fetch_ms']:6.1f} {r['same_host_fetch_gbps']:5.1f} {r['same_host_compute_ms']:7.1f} | "
              f"{r['data_port_ttft_ms']:12.1f} {r['data_port_speedup']:5.1f}x {r['data_port_fetch_ms']:6.1f} "
              f"{r['data_port_fetch_gbps']:5.1f}")
    if binding:
        print("\nPython binding vs the C++ client, 2 MiB blocks (GB/s, medians)")
        print(f"{'path':>10} {'blocks/call':>11} {'C++':>6} {'fetch_into':>10} {'ratio':>6} {'fetch(numpy)':>12} {'ratio':>6}")
        for b in binding:
            print(f"{b['path']:>10} {b['blocks_per_call']:11d} {b['cc_gbps']:6.2f} {b['fetch_into_gbps']:10.2f} "
                  f"{b['fetch_into_ratio']:6.2f} {b['fetch_numpy_gbps']:12.2f} {b['fetch_numpy_ratio']:6.2f}")


def plot(ttft, out_dir):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("gnuplot not found: no plot", file=sys.stderr)
        return
    data = os.path.join(out_dir, "engine_ttft.dat")
    with open(data, "w") as f:
        for r in ttft:
            f.write(f"{r['tokens']} {r['cold_ttft_ms']} {r['same_host_ttft_ms']} {r['data_port_ttft_ms']}\n")
    png = os.path.join(out_dir, "engine_ttft.png")
    script = f"""
set terminal pngcairo size 900,520
set output '{png}'
set title 'Reference engine: time to first token, cold prefill vs restored from kvcache'
set xlabel 'prompt tokens'
set ylabel 'TTFT (ms, log scale)'
set logscale xy
set key top left
set grid
plot '{data}' using 1:2 with linespoints lw 2 title 'cold (full prefill)', \\
     '{data}' using 1:3 with linespoints lw 2 title 'warm, same-host path', \\
     '{data}' using 1:4 with linespoints lw 2 title 'warm, data port'
"""
    subprocess.run([gnuplot], input=script.encode(), check=True)
    os.remove(data)
    print(f"plot: {png}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", default="512,1024,2048,4096,8192", help="prompt lengths, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="rounds per length; figures are medians")
    parser.add_argument("--new_tokens", type=int, default=4, help="tokens generated per request")
    parser.add_argument("--binding_runs", type=int, default=5, help="rounds of the binding comparison (0: skip)")
    parser.add_argument("--kvstored", default="kvstore/kvstored", help="kvstored binary")
    parser.add_argument("--out", default="", help="folder for engine_bench.json and engine_ttft.png")
    parser.add_argument("--device", default="cpu",
                        help="where the model and the paged cache live: cpu, or cuda (blocks then "
                             "go through pinned host memory)")
    args = parser.parse_args(argv)
    try:
        lengths = [int(x) for x in args.tokens.split(",") if x]
    except ValueError:
        parser.error("--tokens takes comma-separated integers")
    if not lengths or min(lengths) < 32 or any(n % 16 for n in lengths) or args.runs < 1:
        parser.error("--tokens: multiples of 16, at least 32; --runs at least 1")

    config = ModelConfig()
    model = LlamaModel(config, max_positions=max(lengths) + args.new_tokens + 16)
    stored = sum(lengths) * args.runs * (config.layers * 2 * config.kv_heads * config.head_dim * 4)
    capacity = max(256 << 20, int(stored * 1.25) + (64 << 20))
    print(f"kvstored with a {capacity >> 20} MiB host tier; model {config.layers} layers x {config.hidden}, "
          f"{config.heads} heads ({config.kv_heads} KV), fp32, on {args.device}; torch threads "
          f"{__import__('torch').get_num_threads()}; client: {kvcache.BACKEND}", flush=True)
    with Daemon([f"--host_capacity={capacity}", "--page_size=256KiB", "--prefault"], binary=args.kvstored) as d:
        ttft = ttft_rounds(d, config, model, lengths, args.runs, args.new_tokens, args.device)
        # The binding comparison times the extension against its C++ loop.
        run_binding = args.binding_runs > 0 and kvcache.BACKEND == "extension"
        binding = binding_rounds(d, args.binding_runs) if run_binding else []
    print_tables(ttft, binding)
    if args.out:
        if not os.path.isabs(args.out) and os.environ.get("BUILD_WORKSPACE_DIRECTORY"):
            args.out = os.path.join(os.environ["BUILD_WORKSPACE_DIRECTORY"], args.out)  # bazel run
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "engine_bench.json"), "w") as f:
            json.dump({"ttft": ttft, "binding": binding,
                       "conditions": {"runs": args.runs, "new_tokens": args.new_tokens,
                                      "device": args.device, "client": kvcache.BACKEND,
                                      "model": {k: str(v) for k, v in config.__dict__.items()}}}, f, indent=1)
        plot(ttft, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
