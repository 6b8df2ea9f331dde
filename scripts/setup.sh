#!/usr/bin/env bash
# Installs what building Kauri needs beyond the Rust toolchain: RocksDB
# (Debian's librocksdb-dev, linked instead of compiled from source), libclang
# (bindgen generates RocksDB's bindings) and a C/C++ toolchain.
# Idempotent and quiet when everything is already there.
set -euo pipefail

missing=()
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null; then
    missing+=(libclang-dev)
fi
if [ ! -e /usr/lib/x86_64-linux-gnu/librocksdb.so ]; then
    missing+=(librocksdb-dev)
fi
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)

if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; Kauri needs a Rust toolchain (rustup) of the version in Cargo.toml's rust-version or newer" >&2
    exit 1
fi

# The crates the workspace builds patched (Cargo.toml's [patch.crates-io]).
"$(dirname "$0")/patched-crates.sh"
