#!/bin/sh
# The Debian packages the tests need, installed when missing (npm test runs this): bubblewrap, the sandbox of
# streaming commands on --sandbox nodes (docs/streaming.md); nftables, the NAT routers of the network-namespace
# tests (test/support/netns.ts).
set -e
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$missing nftables"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "mrp2p tests: missing$missing; install as root: apt-get install$missing" >&2
  exit 1
fi
echo "mrp2p tests: installing$missing" >&2
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq $missing >/dev/null; }
command -v bwrap >/dev/null 2>&1 && { command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; }
