#!/bin/sh
# make check: the pytest integration tests against the ringcastd and
# ringcastctl of this build tree (in-tree or out-of-tree).
set -eu
srcdir=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
RINGCASTD=${RINGCASTD:-$builddir/ringcastd}
RINGCASTCTL=${RINGCASTCTL:-$builddir/ringcastctl}
PYTHONDONTWRITEBYTECODE=1
export RINGCASTD RINGCASTCTL PYTHONDONTWRITEBYTECODE
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$srcdir/tests/integration"
