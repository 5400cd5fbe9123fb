#!/bin/sh
# make check: the pytest integration tests against the ringcastd and
# ringcastctl of this build tree (in-tree or out-of-tree).
set -eu
srcdir=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
builddir=$(cd "${top_builddir:-.}" && pwd)
RC_BUILDDIR=$builddir
RINGCASTD=${RINGCASTD:-$builddir/ringcastd}
RINGCASTCTL=${RINGCASTCTL:-$builddir/ringcastctl}
PYTHONDONTWRITEBYTECODE=1
export RC_BUILDDIR RINGCASTD RINGCASTCTL PYTHONDONTWRITEBYTECODE
# RINGCAST_PYTEST_ARGS is split into words, never expanded as file names.
set -f
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider ${RINGCAST_PYTEST_ARGS:-} "$srcdir/tests/integration"
