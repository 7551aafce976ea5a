#!/usr/bin/env bash
# Installs what is missing, then builds and runs every test. Extra arguments
# go to `bazel test` (e.g. --config=asan). Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."

tools/scripts/install_deps.sh || exit 1

bazel test //... "$@"
rc=$?

# Count test cases (not only targets) from the JUnit XML Bazel writes.
python3 tools/scripts/count_tests.py bazel-testlogs "$rc"
