#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of cutover from Debian packages, then builds.
# Idempotent: a second run installs nothing and rebuilds only what changed.
#   scripts/setup.sh            install + build (build/ , RelWithDebInfo)
#   scripts/setup.sh --no-build install only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libevent-dev libpq-dev libpg-query-dev libprotobuf-c-dev libboost-dev libyaml-cpp-dev prometheus-cpp-dev
  libssl-dev libfmt-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev
  postgresql-15 postgresql-client-15 pgbouncer
  postgresql-server-dev-15 dpkg-dev
  python3 python3-psycopg2 python3-psycopg default-jdk-headless libpostgresql-jdbc-java nodejs
  clang libclang-rt-14-dev procps iproute2
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm ships with some nodejs builds and not others; the node-postgres client test needs it.
if ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# PostgreSQL's own regression suite (tests/integration/test_regress.py): a deb-src entry, the
# postgresql-15 source package and regress.so/refint.so/autoinc.so, in a cache dir outside the repo.
scripts/regress_suite.sh

[ "${1:-}" = "--no-build" ] && exit 0

# Cache hits across clones (CI builds a fresh clone): ccache rewrites paths under this folder.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
# -g puts the build directory into the object files, so by default ccache hashes it too and a
# clone elsewhere (CI's, a worktree) never hits; the paths are relative to CCACHE_BASEDIR anyway.
export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR"
