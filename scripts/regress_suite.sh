#!/usr/bin/env bash
# Prepares PostgreSQL 15's own regression suite for tests/integration/test_regress.py:
#   - a deb-src entry for the Debian archive the machine already uses (idempotent),
#   - `apt-get source postgresql-15` (the installed server's exact version if the archive still
#     has it, else the archive's candidate 15.x) into the cache dir,
#   - regress.so (src/test/regress/regress.c) and contrib/spi's refint.so and autoinc.so built
#     with pgxs from postgresql-server-dev-15, into the cache dir's lib/ (pg_regress --dlpath).
# Needs the Debian packages postgresql-15, postgresql-server-dev-15 and dpkg-dev (setup.sh
# installs them first). Run as root, or with sudo for the apt steps.
#   scripts/regress_suite.sh          prepare (a second run does nothing)
#   scripts/regress_suite.sh --dir    print the directory the suite is (or would be) in
# The directory: $CUTOVER_REGRESS_DIR, else /var/cache/cutover/pg-regress when it can be
# written, else ~/.cache/cutover/pg-regress. test_regress.py looks in the same places.
set -euo pipefail

regress_dir() {
  if [ -n "${CUTOVER_REGRESS_DIR:-}" ]; then echo "$CUTOVER_REGRESS_DIR"; return; fi
  if mkdir -p /var/cache/cutover 2>/dev/null && [ -w /var/cache/cutover ]; then
    echo /var/cache/cutover/pg-regress
  else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/cutover/pg-regress"
  fi
}

DIR=$(regress_dir)
if [ "${1:-}" = "--dir" ]; then echo "$DIR"; exit 0; fi

PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PG_REGRESS=/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

[ -x "$PG_CONFIG" ] || { echo "regress_suite: $PG_CONFIG missing: install postgresql-server-dev-15" >&2; exit 1; }
[ -x "$PG_REGRESS" ] || { echo "regress_suite: $PG_REGRESS missing: install postgresql-15" >&2; exit 1; }

# The stamp names the server version the libraries were built for: a server upgrade rebuilds.
server_version=$(dpkg-query -W -f='${Version}' postgresql-15)
stamp="$DIR/READY"
if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "server $server_version" ] &&
   [ -f "$DIR/lib/regress.so" ] && [ -f "$DIR/lib/refint.so" ] && [ -f "$DIR/lib/autoinc.so" ] &&
   [ -f "$DIR/source/src/test/regress/parallel_schedule" ]; then
  exit 0
fi

# --- deb-src ---------------------------------------------------------------------------------
# Debian 12 keeps its archive in deb822 form (/etc/apt/sources.list.d/debian.sources, "Types:
# deb"); older images use one-line /etc/apt/sources.list. Either way the deb-src entries go in a
# file of their own that mirrors the deb entries (same URIs, suites, keys), so the system's own
# files stay untouched and a second run finds the file and adds nothing.
have_deb_src() {
  grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/
}
if ! have_deb_src; then
  tmp=$(mktemp)
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -E 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$tmp"
    target=/etc/apt/sources.list.d/cutover-deb-src.sources
  elif [ -f /etc/apt/sources.list ] && grep -qE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    sed -nE 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list > "$tmp"
    target=/etc/apt/sources.list.d/cutover-deb-src.list
  else
    echo "regress_suite: no Debian archive entry found in /etc/apt to derive a deb-src entry from" >&2
    rm -f "$tmp"; exit 1
  fi
  echo "regress_suite: adding $target"
  $SUDO install -m 644 "$tmp" "$target"
  rm -f "$tmp"
  $SUDO apt-get update -qq
fi

# --- source ----------------------------------------------------------------------------------
mkdir -p "$DIR"
cd "$DIR"
src_ok=0
if [ -f source/src/test/regress/parallel_schedule ]; then
  src_ok=1
else
  rm -rf fetch && mkdir fetch && cd fetch
  # The installed server's own version first, so expected/ matches it; then every version the
  # archive's deb-src entries list, newest first (a security update's source may not be on the
  # mirror while its binaries are: the nearest older 15.x then serves).
  apt-cache showsrc postgresql-15 >/dev/null 2>&1 || $SUDO apt-get update -qq
  versions=$( { echo "$server_version"
                apt-cache showsrc postgresql-15 2>/dev/null | sed -n 's/^Version: //p' | sort -V -r; } |
              awk '!seen[$0]++')
  for v in $versions; do
    if apt-get source -qq "postgresql-15=$v" >/dev/null 2>apt-source.err; then src_ok=1; break; fi
    echo "regress_suite: apt-get source postgresql-15=$v failed: $(grep '^E:' apt-source.err | tail -n1)" >&2
    rm -rf ./postgresql-15*
  done
  cd "$DIR"
  if [ "$src_ok" = 1 ]; then
    tree=$(find fetch -mindepth 1 -maxdepth 1 -type d -name 'postgresql-15-*' | head -n1)
    [ -n "$tree" ] || { echo "regress_suite: apt-get source left no postgresql-15-* tree" >&2; exit 1; }
    rm -rf source
    mv "$tree" source
    basename "$tree" > SOURCE_VERSION
    rm -rf fetch
  fi
fi
[ "$src_ok" = 1 ] || { echo "regress_suite: could not fetch the postgresql-15 source package" >&2; exit 1; }

# --- libraries -------------------------------------------------------------------------------
# with_llvm=no: no JIT bitcode (Debian's pgxs would otherwise want clang-14 for .bc files).
mkdir -p lib build/regress
cp source/src/test/regress/regress.c build/regress/
cat > build/regress/Makefile <<'EOF'
MODULES = regress
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
EOF
make -s -C build/regress PG_CONFIG="$PG_CONFIG" with_llvm=no >/dev/null
make -s -C source/contrib/spi USE_PGXS=1 PG_CONFIG="$PG_CONFIG" with_llvm=no refint.so autoinc.so >/dev/null
cp build/regress/regress.so source/contrib/spi/refint.so source/contrib/spi/autoinc.so lib/
# The clusters run as the postgres OS user when the tests run as root: it must read the
# libraries and the suite's data/ files (server-side COPY FROM).
chmod -R a+rX "$DIR"
{ echo "server $server_version"; echo "source $(cat SOURCE_VERSION)"; } > "$stamp"
echo "regress_suite: PostgreSQL regression suite ready in $DIR ($(cat SOURCE_VERSION), server $server_version)"
