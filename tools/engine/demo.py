"""Runs one prompt through the reference engine against a running kvstored
and prints its time to first token. Run it twice: the first run prefills
and stores the prompt's KV blocks, the second restores them.

    bazel run //tools/engine:demo -- --address=127.0.0.1:50051 --tokens=2048
"""

import argparse
import random
import sys
import time

import kvcache
from connector import KvcacheConnector
from engine import Engine
from model import LlamaModel, ModelConfig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", default="127.0.0.1:50051", help="kvstored's gRPC address")
    parser.add_argument("--tokens", type=int, default=2048, help="prompt length in tokens")
    parser.add_argument("--new_tokens", type=int, default=16, help="tokens to generate (greedy)")
    parser.add_argument("--seed", type=int, default=1, help="the prompt's random seed: same seed, same prompt")
    parser.add_argument("--no_local_path", action="store_true", help="use the data port, not the same-host path")
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.new_tokens < 1:
        parser.error("--tokens and --new_tokens must be at least 1")

    config = ModelConfig()
    print(f"model: {config.layers} layers, {config.hidden} wide, {config.heads} heads "
          f"({config.kv_heads} KV), seed {config.seed}; building weights...", flush=True)
    model = LlamaModel(config)
    client = kvcache.Client(args.address, use_local_path=not args.no_local_path)
    connector = KvcacheConnector(client, config)
    engine = Engine(config, connector=connector, model=model,
                    num_pages=-(-(args.tokens + args.new_tokens) // 16) + 1)
    rng = random.Random(args.seed)
    prompt = [rng.randrange(config.vocab_size) for _ in range(args.tokens)]

    start = time.perf_counter()
    out = engine.generate(prompt, args.new_tokens)
    total = time.perf_counter() - start
    t = out.timings
    print(f"time to first token: {out.ttft_s * 1e3:.1f} ms "
          f"(lookup {t['lookup'] * 1e3:.1f} ms, fetch {t['fetch'] * 1e3:.1f} ms, "
          f"compute {t['compute'] * 1e3:.1f} ms)")
    print(f"prompt: {len(prompt)} tokens, {out.restored_tokens} restored from kvcache, "
          f"{out.computed_tokens} computed; {out.saved_blocks} new blocks stored "
          f"({t['save'] * 1e3:.1f} ms)")
    print(f"generated {len(out.tokens)} tokens in {total:.2f} s: {out.tokens}")
    if out.restored_tokens == 0 and out.saved_blocks == 0:
        counters = client.stats()
        if counters["lookup_errors"] or counters["put_errors"]:
            print(f"kvcache was not reachable at {args.address}: every request prefilled", file=sys.stderr)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
