#!/bin/sh
# The Debian packages the tests need, installed when missing (npm test runs this): bubblewrap, the sandbox of
# streaming commands on --sandbox nodes (docs/streaming.md).
set -e
command -v bwrap >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "mrp2p tests: bubblewrap (bwrap) is missing; install it as root: apt-get install bubblewrap" >&2
  exit 1
fi
echo "mrp2p tests: installing bubblewrap" >&2
apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null; }
command -v bwrap >/dev/null 2>&1
