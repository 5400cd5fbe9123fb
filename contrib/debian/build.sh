#!/bin/sh
# Build the .deb: copy the tree's sources (tracked and not ignored: never
# build output) to a temporary directory, put contrib/debian there as
# debian/, run dpkg-buildpackage -us -uc -b, and move the .deb files to
# OUTDIR (default: the top of the tree).
#   contrib/debian/build.sh [OUTDIR]
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
src="$work/ringcast-0.1.0"
mkdir -p "$src"
cd "$top"
if [ -d .git ] || [ -f .git ]; then
	git ls-files -co --exclude-standard -z | grep -zv '^_build' |
	    xargs -0 tar -cf - | tar -xf - -C "$src"
else
	tar -cf - --exclude=./debian --exclude='./_build*' . | tar -xf - -C "$src"
fi
rm -rf "$src/debian"
cp -R contrib/debian "$src/debian"
rm -f "$src/debian/build.sh"
cd "$src"
# Quick: parallel, no -dbgsym package, the tests run elsewhere.
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-} parallel=$(nproc) noddebs nocheck"
export DEB_BUILD_OPTIONS
dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || {
	tail -40 "$work/build.log" >&2
	echo "build.sh: dpkg-buildpackage failed" >&2
	exit 1
}
for f in "$work"/*.deb; do
	mv "$f" "$out/"
	echo "$out/$(basename "$f")"
done
