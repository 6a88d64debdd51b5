#!/bin/sh
# Install every Debian 12 package cruddur's build, tests and demo need.
# Idempotent: installs only what is missing. As root it runs apt-get; as
# anyone else it prints the exact command to run.
#   scripts/install-deps.sh          install what is missing
#   scripts/install-deps.sh --check  exit 1 if anything is missing
set -eu

# clang-14 + libclang-rt-14-dev: libFuzzer and its sanitizer runtimes (make fuzz).
PKGS="clang-14 libclang-rt-14-dev clang-format build-essential pkg-config libcurl4-openssl-dev libcjson-dev libunwind-dev zlib1g-dev
libcriterion-dev python3 python3-protobuf protobuf-compiler nginx-light nodejs
wrk apache2-utils binutils curl ca-certificates python3-yaml util-linux chromium openssl"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "missing Debian packages:$missing" >&2
	exit 1
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
	echo "cruddur needs these Debian packages:$missing" >&2
	echo "run as root: $cmd" >&2
	exit 1
fi
echo "installing:$missing" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
