#!/usr/bin/env bash
# Builds ferromq's libzmq-compatible library into a prefix:
#   PREFIX/lib/libzmq.so.5, PREFIX/lib/libzmq.so -> libzmq.so.5, PREFIX/lib/libzmq.a,
#   PREFIX/include/zmq.h, PREFIX/lib/pkgconfig/libzmq.pc
# Usage: scripts/stage-libzmq.sh PREFIX [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${1:?usage: stage-libzmq.sh PREFIX [--debug]}
profile=release
[ "${2:-}" = "--debug" ] && profile=debug
if [ "$profile" = release ]; then cargo build --quiet --release -p ferromq-capi; else cargo build --quiet -p ferromq-capi; fi
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
install -m 0755 "target/$profile/libzmq.so" "$prefix/lib/libzmq.so.5"
ln -sf libzmq.so.5 "$prefix/lib/libzmq.so"
install -m 0644 "target/$profile/libzmq.a" "$prefix/lib/libzmq.a"
install -m 0644 crates/ferromq-capi/include/zmq.h "$prefix/include/zmq.h"
cat > "$prefix/lib/pkgconfig/libzmq.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libzmq
Description: ferromq, a pure-Rust ZeroMQ, as libzmq 4.3.5
Version: 4.3.5
Libs: -L\${libdir} -lzmq
Libs.private: -lpthread -ldl -lm
Cflags: -I\${includedir}
PC
echo "staged libzmq.so.5 ($profile) in $prefix"
