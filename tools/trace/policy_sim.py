#!/usr/bin/env python3
"""Offline models of eviction policies on a trace, to choose what kvstored does.

Counts the prefix hit ratio exactly as `kvbench trace` does (the leading run
of each request's chain found cached, over all prompt blocks; then every block
of the request is accessed in order). Policies:

  lru        plain LRU over blocks (also in tools/trace/prefix_sim.cc)
  leaf       LRU among leaves of the prefix forest (kvstored's base policy)
  tail       leaf, plus each prompt's last, partial block evicted first until
             it is hit (kvstored with evict_first, as `kvbench trace` puts it)
  slruQ      leaf with two classes: blocks hit at least once are protected,
             and protected blocks are evicted first only while they exceed
             Q of the capacity (segmented LRU)

Usage: tools/trace/policy_sim.py ../shared/traces/conversation_trace.jsonl
Takes a few minutes for the whole sweep (pure Python).
"""
import collections
import heapq
import json
import sys


def load(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return [r["hash_ids"] for r in rows], [r.get("input_length", 0) % 512 != 0 for r in rows]


def lru(trace, cap):
    cached, hits = collections.OrderedDict(), 0
    for chain in trace:
        n = 0
        while n < len(chain) and chain[n] in cached:
            n += 1
        hits += n
        for b in chain:
            if b in cached:
                cached.move_to_end(b)
            else:
                if len(cached) >= cap:
                    cached.popitem(last=False)
                cached[b] = True
    return hits


def leaf(trace, partial, cap, tail=False, protect=None):
    """Leaf-only eviction; class 0 (partial tails) goes first, then 1 (new),
    then 2 (hit at least once; only with `protect`)."""
    parent, kids, tick, cls = {}, collections.Counter(), {}, {}
    heaps, count = {0: [], 1: [], 2: []}, collections.Counter()
    clock = hits = 0

    def push(b):
        heapq.heappush(heaps[cls[b]], (tick[b], b))

    def evict():
        order = [0] + ([2, 1] if protect and count[2] > protect * cap else [1, 2])
        for c in order:
            h = heaps[c]
            while h:
                t, b = heapq.heappop(h)
                if b in parent and kids[b] == 0 and tick[b] == t and cls[b] == c:
                    p = parent.pop(b)
                    count[c] -= 1
                    if p is not None:
                        kids[p] -= 1
                        if kids[p] == 0:
                            push(p)
                    return True
        return False

    for chain, is_partial in zip(trace, partial):
        n = 0
        while n < len(chain) and chain[n] in parent:
            n += 1
        hits += n
        for b in chain[:n]:
            clock += 1
            tick[b] = clock
            new_cls = 2 if protect else 1
            if cls[b] != new_cls:
                count[cls[b]] -= 1
                cls[b] = new_cls
                count[new_cls] += 1
            if kids[b] == 0:
                push(b)
        for k in range(n, len(chain)):
            b = chain[k]
            while len(parent) >= cap and evict():
                pass
            p = chain[k - 1] if k else None
            if p is not None and p not in parent:
                break
            parent[b] = p
            clock += 1
            tick[b] = clock
            cls[b] = 0 if tail and is_partial and k == len(chain) - 1 else 1
            count[cls[b]] += 1
            if p is not None:
                kids[p] += 1
            push(b)
    return hits


def main():
    trace, partial = load(sys.argv[1])
    distinct = len({b for chain in trace for b in chain})
    total = sum(map(len, trace))
    print("capacity  lru     leaf    tail    slru0.5 slru0.8")
    for pct in (1, 2, 5, 10, 20, 50):
        cap = -(-distinct * pct // 100)
        ratios = [lru(trace, cap), leaf(trace, partial, cap), leaf(trace, partial, cap, tail=True),
                  leaf(trace, partial, cap, protect=0.5), leaf(trace, partial, cap, protect=0.8)]
        print("%7d%%  " % pct + "  ".join("%5.2f%%" % (100.0 * h / total) for h in ratios),
              flush=True)


if __name__ == "__main__":
    main()
