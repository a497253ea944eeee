#!/usr/bin/env bash
# Installs the Debian packages yongjin needs, only those that are missing.
# Quiet when everything is there. Runs apt-get update once before the first
# install, and uses sudo when not root.
#   usage: tools/deps.sh [--bench]
set -euo pipefail

pkgs=(
  # runtime
  build-essential pkg-config
  libevent-dev libnghttp2-dev liblmdb-dev libprotobuf-c-dev protobuf-c-compiler
  libssl-dev libjansson-dev libdeflate-dev libjemalloc-dev libxxhash-dev
  protobuf-compiler  # make builds build/py/ too (README's Python example)
  # tests
  python3 python3-grpcio python3-protobuf python3-pytest python3-h2
  libcmocka-dev nghttp2-client clang libclang-rt-14-dev openssl lmdb-utils bc
)
if [ "${1:-}" = "--bench" ]; then
  pkgs+=(postgresql postgresql-contrib bc)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps.sh: done" >&2
