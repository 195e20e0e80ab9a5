"""libzmq (pyzmq) peer for crates/ferromq/tests/interop_pubsub.rs.

Usage: python3 pubsub_peer.py TYPE TIMEOUT_MS

Makes one libzmq socket of TYPE (PUB, SUB, XPUB, XSUB) and runs the commands
it reads from stdin, one per line, answering each with exactly one stdout
line. Binary arguments and results are hex.

  bind              bind tcp://127.0.0.1:*      -> "endpoint tcp://127.0.0.1:N"
  bind EP           bind EP (a restarted peer)  -> "endpoint EP"
  connect EP                                    -> "ok"
  subscribe HEX     ZMQ_SUBSCRIBE (SUB)         -> "ok"
  unsubscribe HEX   ZMQ_UNSUBSCRIBE (SUB)       -> "ok"
  verbose           ZMQ_XPUB_VERBOSE (XPUB)     -> "ok"
  send HEX...       one multipart message       -> "ok"
  recv              one message                 -> "msg HEX..."
  count HEX N       receive until N messages whose first frame starts with
                    HEX arrived; every message must be [topic, seq] with
                    topic ending in "-seq", and matching seqs must increase
                    -> "counted N matching, M other" (+ " first other HEX")
  publish HEX...    (PUB/XPUB) each millisecond, one round: for each topic T
                    publish [T + "-" + r, r] (r = round number), until the
                    next line arrives, which must be "stop"
                    -> "stopped after R rounds"
  close             close the socket            -> "ok"

Every wait is bounded by TIMEOUT_MS (a publish by 3 x TIMEOUT_MS). EOF on
stdin ends the process with status 0; any failure prints "FAIL why" on stdout
and stderr and exits with status 1.
"""

import os
import select
import sys
import time

import zmq


def fail(why):
    print("FAIL " + why, flush=True)
    print("libzmq pubsub peer FAIL: " + why, file=sys.stderr, flush=True)
    sys.exit(1)


class Lines:
    """Lines from stdin, readable with a timeout (no buffering surprises).

    While it waits, it keeps the libzmq socket serviced, as an event loop
    would: libzmq attaches a newly accepted connection (and sends it the SUB's
    subscriptions) only when the socket's own thread calls into the socket.
    ZMQ_FD turns readable when such work is pending; ZMQ_EVENTS does it.
    """

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def next(self, timeout):
        """The next line; "" on EOF; None if nothing arrived within timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf and not self.eof:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            fds = [0] if self.sock.closed else [0, self.sock.getsockopt(zmq.FD)]
            ready = select.select(fds, [], [], left)[0]
            if not ready:
                return None
            if 0 not in ready:
                self.sock.getsockopt(zmq.EVENTS)
                continue
            chunk = os.read(0, 4096)
            self.eof = not chunk
            self.buf += chunk
        if b"\n" not in self.buf:
            line, self.buf = self.buf, b""
            return line.decode()
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode() + "\n"


def main():
    kind, timeout_ms = sys.argv[1], int(sys.argv[2])
    ctx = zmq.Context()
    sock = ctx.socket(getattr(zmq, kind))
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    lines = Lines(sock)

    def recv(what):
        try:
            return sock.recv_multipart()
        except zmq.Again:
            fail("timed out after %d ms waiting for %s" % (timeout_ms, what))

    def count(prefix, n):
        matching, other, first_other, last_seq = 0, 0, None, -1
        while matching < n:
            msg = recv("message %d matching %r" % (matching, prefix))
            if len(msg) != 2 or not msg[0].endswith(b"-" + msg[1]):
                fail("malformed message %r" % msg)
            if not msg[0].startswith(prefix):
                other += 1
                first_other = first_other or msg[0]
                continue
            seq = int(msg[1])
            if seq <= last_seq:
                fail("seq %d after %d: reordered or duplicated" % (seq, last_seq))
            last_seq = seq
            matching += 1
        tail = "" if first_other is None else " first other " + first_other.hex()
        return "counted %d matching, %d other%s" % (matching, other, tail)

    def publish(topics):
        rounds, deadline = 0, time.monotonic() + 3 * timeout_ms / 1000
        while True:
            for t in topics:
                sock.send_multipart([t + b"-%d" % rounds, b"%d" % rounds])
            rounds += 1
            line = lines.next(0.001)
            if line == "":
                sys.exit(0)  # EOF: the test is done with us.
            if line is not None:
                if line.strip() != "stop":
                    fail("publishing: expected 'stop', got %r" % line)
                return "stopped after %d rounds" % rounds
            if time.monotonic() > deadline:
                fail("still publishing after %d ms" % (3 * timeout_ms))

    while True:
        line = lines.next(None)
        if not line:
            break  # EOF: the test is done with us.
        cmd, *args = line.split()
        if cmd == "bind":
            sock.bind(args[0] if args else "tcp://127.0.0.1:*")
            reply = "endpoint " + sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        elif cmd == "connect":
            sock.connect(args[0])
            reply = "ok"
        elif cmd in ("subscribe", "unsubscribe"):
            opt = zmq.SUBSCRIBE if cmd == "subscribe" else zmq.UNSUBSCRIBE
            sock.setsockopt(opt, bytes.fromhex(args[0] if args else ""))
            reply = "ok"
        elif cmd == "verbose":
            sock.setsockopt(zmq.XPUB_VERBOSE, 1)
            reply = "ok"
        elif cmd == "send":
            try:
                sock.send_multipart([bytes.fromhex(a) for a in args])
            except zmq.ZMQError as e:
                fail("send: %s" % e)
            reply = "ok"
        elif cmd == "recv":
            reply = " ".join(["msg"] + [f.hex() for f in recv("a message")])
        elif cmd == "count":
            reply = count(bytes.fromhex(args[0]), int(args[1]))
        elif cmd == "publish":
            reply = publish([bytes.fromhex(a) for a in args])
        elif cmd == "close":
            sock.close()
            reply = "ok"
        else:
            fail("unknown command %r" % line)
        print(reply, flush=True)

    sock.close()
    ctx.term()


main()
