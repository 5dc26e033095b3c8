#!/usr/bin/env bash
# One command from a fresh clone to the whole test suite: installs dependencies, builds, runs ctest.
#   scripts/test.sh                  release build (build/), every test
#   SANITIZE=1 scripts/test.sh       ASan+UBSan build (build-asan/), every test
#   scripts/test.sh -L unit          extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${SANITIZE:-0}" = 1 ]; then
  export BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_ARGS="-DCUTOVER_SANITIZE=ON"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
fi
scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build}
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j "${CTEST_JOBS:-2}" "$@"
