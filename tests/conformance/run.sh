#!/bin/sh
# The conformance suite: ringcastd against real SSE clients (headless
# Chromium from Debian driven by playwright-core, the eventsource package,
# curl -N).  Run by ./bootstrap check after make check; by hand:
#   tests/conformance/run.sh [test/NN-name.test.mjs ...]
# RINGCASTD and RINGCASTCTL default to the binaries of the source tree.
# Test artifacts (the demo page's screenshot) go to tests/conformance/artifacts/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${RINGCASTD:=$top/ringcastd}"
: "${RINGCASTCTL:=$top/ringcastctl}"
export RINGCASTD RINGCASTCTL
cd "$here"
# Exactly the locked versions; never a browser download (playwright-core
# has none; Chromium is Debian's /usr/bin/chromium).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
	npm ci --no-audit --no-fund --loglevel=error
fi
rm -rf artifacts
mkdir -p artifacts
[ $# -gt 0 ] || set -- test/
# One file at a time (each starts its daemon and browser; the box has two
# cores); every test is also bounded as a whole.
exec node --test --test-concurrency=1 --test-timeout=120000 "$@"
