#!/usr/bin/env bash
# Builds the Debian package, target/debian/presence_VERSION_ARCH.deb, and prints its path last:
# the server in release (the binary alone, not the benchmarks' examples), its manual pages made
# from the command line's definitions, then `cargo deb`, which needs cargo-deb:
#   cargo install cargo-deb --locked --version 3.8.0
# What goes in the package is [package.metadata.deb] in Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "cargo-deb is missing: cargo install cargo-deb --locked --version 3.8.0" >&2
  exit 1
fi

cargo build --release --locked --bin presence
# Built in the dev profile, which a test run has already built the library in. Only the
# package's path goes to standard output.
cargo run --locked --quiet --example man -- target/man >&2
cargo deb --no-build --locked
