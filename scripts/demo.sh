#!/usr/bin/env bash
# Runs the `ferromq` command on real exchanges over tcp loopback, and against
# libzmq (pyzmq) when it is installed. Everything it prints is real traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release -p ferromq-cli
F=target/release/ferromq
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

EP="tcp://127.0.0.1:$(port)"
echo "== ferromq REP (echo) <-> ferromq REQ on $EP"
$F rep --bind "$EP" --echo --count 2 --timeout 10000 | sed 's/^/  rep got:   /' &
$F req --connect "$EP" --send 'hello|multipart|world' --send 'second request' --timeout 10000 | sed 's/^/  req reply: /'
wait

EP="tcp://127.0.0.1:$(port)"
echo "== ferromq PUSH (stdin lines) -> ferromq PULL on $EP"
$F pull --bind "$EP" --count 3 --timeout 10000 | sed 's/^/  pull got:  /' &
printf 'one\ntwo|frames\nthree\n' | $F push --connect "$EP" --timeout 10000
wait

if python3 -c 'import zmq' 2>/dev/null; then
  EP="tcp://127.0.0.1:$(port)"
  echo "== libzmq $(python3 -c 'import zmq; print(zmq.zmq_version())') REQ (pyzmq) -> ferromq REP on $EP"
  $F rep --bind "$EP" --echo --count 1 --timeout 10000 | sed 's/^/  ferromq rep got: /' &
  python3 - "$EP" <<'PY'
import sys, zmq
s = zmq.Context.instance().socket(zmq.REQ); s.connect(sys.argv[1]); s.RCVTIMEO = 10000
s.send_multipart([b"from", b"libzmq"]); print("  libzmq req reply:", b"|".join(s.recv_multipart()).decode())
PY
  wait
else
  echo "(pyzmq not installed: 'python3 -m pip install pyzmq' adds a libzmq exchange)"
fi

echo "== ferromq perf: a quick local throughput and latency test (tcp loopback)"
$F perf --secs 1
