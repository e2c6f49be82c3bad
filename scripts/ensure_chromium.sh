#!/bin/sh
# Make sure the Chromium the browser tests drive is installed (`make test` runs this first).
# As root with apt-get, install Debian's package when it is missing; otherwise fail and say
# exactly what to run, rather than let the browser tests fail one by one.
set -eu

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

works() { "$CHROMIUM" --version >/dev/null 2>&1; }

if works; then
    exit 0
fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium not found at $CHROMIUM: installing Debian's chromium package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
    if works; then
        exit 0
    fi
    echo "apt-get installed chromium, but $CHROMIUM --version still fails" >&2
    exit 1
fi

cat >&2 <<MESSAGE
The browser tests need Chromium at $CHROMIUM, and it is not installed.
Install it, then run make test again:

    sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium

(Chromium elsewhere: make test CHROMIUM_PATH=/path/to/chromium.)
MESSAGE
exit 1
