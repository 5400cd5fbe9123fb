#!/bin/sh
# Run the integration tests (pytest) against the binaries just built.
set -eu
: "${top_srcdir:=$(dirname "$0")/..}"
: "${top_builddir:=.}"
RC_BUILDDIR=$(cd "$top_builddir" && pwd)
export RC_BUILDDIR
export RINGCASTD="$RC_BUILDDIR/ringcastd" RINGCASTCTL="$RC_BUILDDIR/ringcastctl"
cd "$top_srcdir/tests/integration"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider ${RINGCAST_PYTEST_ARGS:-} .
