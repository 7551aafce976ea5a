// `kvbench engine ARGS`: the reference engine's TTFT benchmark
// (tools/engine/bench.py, built beside kvbench as tools/engine/bench), run
// with ARGS as they are: they are its own flags, not kvbench's. Without a
// --kvstored among them it is given the kvstored built beside kvbench.
#ifndef KVCACHE_TOOLS_KVBENCH_ENGINE_H_
#define KVCACHE_TOOLS_KVBENCH_ENGINE_H_

namespace kvcache {

// argv[1] is "engine". Replaces this process with the benchmark; returns 1
// (having said why) only if it cannot be started.
int RunEngineBench(int argc, char** argv);

}  // namespace kvcache

#endif  // KVCACHE_TOOLS_KVBENCH_ENGINE_H_
