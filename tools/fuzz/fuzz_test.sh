#!/usr/bin/env bash
# Runs tools/scripts/fuzz.sh for 5 seconds a fuzzer in the test's runfiles
# (the wire fuzzers against the kvstored built with it).
set -euo pipefail
runfiles=${RUNFILES_DIR:-$0.runfiles}/kvcache
KVSTORED=$runfiles/kvstore/kvstored KVCACHE_NO_INSTALL=1 OUT=${TEST_UNDECLARED_OUTPUTS_DIR:-$TEST_TMPDIR} exec "$runfiles/tools/scripts/fuzz.sh" 5
