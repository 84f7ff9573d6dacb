#!/usr/bin/env bash
# Build FerretDB, pinned, once: `scripts/build-ferretdb.sh DIR` leaves DIR/ferretdb.
#
# A second run finds the binary and returns at once. The module comes from the Go
# module proxy, checked against its own go.sum. FerretDB refuses to start unless
# build/version/version.txt names its version (its release scripts write it; the
# module has none), and files in the module cache are read-only, so the module is
# copied to a temporary directory, the file written, and `./cmd/ferretdb` built there.
# A machine without Go gets one line and no binary: the tests that need it say why they skip.
set -euo pipefail
MODULE=github.com/FerretDB/FerretDB
VERSION=${FERRETDB_VERSION:-v1.24.2}
OUT=${1:-var/tools/ferretdb-$VERSION}
if [ -x "$OUT/ferretdb" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "tools: no Go toolchain on PATH: FerretDB $VERSION not built; the tests on FerretDB will be skipped"
  exit 0
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "tools: building FerretDB $VERSION into $OUT (once; 1 to 2 minutes)"
src=$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-src.XXXXXX")
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
dir=$(go mod download -json "$MODULE@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
[ -d "$dir" ] || { echo "tools: go mod download $MODULE@$VERSION gave no module directory" >&2; exit 1; }
cp -R "$dir/." "$src"
chmod -R u+w "$src"
echo "$VERSION" > "$src/build/version/version.txt"
(cd "$src" && go build -buildvcs=false -trimpath -o "$OUT/ferretdb.partial" ./cmd/ferretdb)
mv "$OUT/ferretdb.partial" "$OUT/ferretdb"
version=$("$OUT/ferretdb" --version)  # not piped into head: with pipefail its SIGPIPE (141) failed the build
echo "${version%%$'\n'*}"
