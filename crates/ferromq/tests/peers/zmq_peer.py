"""libzmq (pyzmq) peer for crates/ferromq/tests/interop_libzmq.rs.

Usage: python3 zmq_peer.py CONFIG_JSON

CONFIG_JSON keys:
  role             "client" (sends each message first) or "server" (receives first)
  type             libzmq socket type name: "REQ", "ROUTER", "PUSH", ...
  endpoint         endpoint to connect to, or null to bind tcp://127.0.0.1:* and
                   print the bound endpoint as the first stdout line
  routing_id       ZMQ_ROUTING_ID to set, or null
  echo             true: the server echoes every message back and the client
                   checks the echo; false (PUSH/PULL): one way only
  client_prefix    frames the client puts before every body (e.g. the empty
                   delimiter a DEALER sends to a REP, or the ROUTER's peer id)
  server_envelope  what the server sees before every body: one entry per
                   frame, a string (exact frame) or null (any non-empty frame,
                   e.g. a generated routing id); echoed back unchanged
  messages         the bodies, each a list of frames given as [seed, length]
  timeout_ms       RCVTIMEO, SNDTIMEO and LINGER

Every received message is checked byte for byte. On success the last stdout
line is "ok N" (N messages) and the exit status is 0; on any failure the
reason goes to stderr and the exit status is 1. Nothing waits forever.
"""

import json
import sys
import time

import zmq


def fail(why):
    print("libzmq peer FAIL: " + why, file=sys.stderr, flush=True)
    sys.exit(1)


def frame(seed, length):
    """Byte i is (7*i + seed) mod 256; the Rust side builds the same bytes."""
    block = bytes(((7 * i + seed) & 255) for i in range(256))
    return (block * (length // 256 + 1))[:length]


def describe(frames):
    return "%d frames, lengths %s" % (len(frames), [len(f) for f in frames])


def mismatch(got, want):
    """None if equal, else a short description of the first difference."""
    if got == want:
        return None
    if len(got) != len(want):
        return "got %s, want %s" % (describe(got), describe(want))
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            if len(g) != len(w):
                return "frame %d: got %d bytes, want %d" % (i, len(g), len(w))
            at = next(j for j in range(len(g)) if g[j] != w[j])
            return "frame %d differs at byte %d: got %d, want %d" % (i, at, g[at], w[at])
    return "messages differ"


def main():
    cfg = json.loads(sys.argv[1])
    timeout_ms = cfg["timeout_ms"]
    bodies = [[frame(s, n) for s, n in m] for m in cfg["messages"]]
    prefix = [p.encode() for p in cfg["client_prefix"]]
    envelope = cfg["server_envelope"]

    ctx = zmq.Context()
    sock = ctx.socket(getattr(zmq, cfg["type"]))
    sock.setsockopt(zmq.LINGER, timeout_ms)
    sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
    sock.setsockopt(zmq.SNDTIMEO, timeout_ms)
    if cfg["routing_id"] is not None:
        sock.setsockopt(zmq.ROUTING_ID, cfg["routing_id"].encode())
    if cfg["type"] == "ROUTER":
        # Unroutable sends fail instead of vanishing.
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)

    if cfg["endpoint"] is None:
        sock.bind("tcp://127.0.0.1:*")
        print(sock.getsockopt(zmq.LAST_ENDPOINT).decode(), flush=True)
    else:
        sock.connect(cfg["endpoint"])

    def recv(what):
        try:
            return sock.recv_multipart()
        except zmq.Again:
            fail("timed out after %d ms waiting for %s" % (timeout_ms, what))

    def send(frames, what, until_routable=False):
        # A ROUTER can address its peer only once the handshake brought the
        # peer's routing id: retry EHOSTUNREACH (router_mandatory) until then.
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            try:
                sock.send_multipart(frames)
                return
            except zmq.ZMQError as e:
                if until_routable and e.errno == zmq.EHOSTUNREACH and time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                fail("sending %s: %s" % (what, e))

    for i, body in enumerate(bodies):
        what = "message %d" % i
        if cfg["role"] == "client":
            send(prefix + body, what, until_routable=(i == 0))
            if not cfg["echo"]:
                continue
            got = recv("echo of " + what)
            why = mismatch(got[: len(prefix)], prefix) or mismatch(got[len(prefix) :], body)
            if why:
                fail("echo of %s (%s): %s" % (what, describe(got), why))
        else:
            got = recv(what)
            env, rest = got[: len(envelope)], got[len(envelope) :]
            if len(env) != len(envelope):
                fail("%s: no room for a %d-frame envelope in %s" % (what, len(envelope), describe(got)))
            for j, (have, want) in enumerate(zip(env, envelope)):
                if (want is None and not have) or (want is not None and have != want.encode()):
                    fail("%s: envelope frame %d is %r, want %r" % (what, j, have, "a routing id" if want is None else want))
            why = mismatch(rest, body)
            if why:
                fail("%s: %s" % (what, why))
            if cfg["echo"]:
                send(got, "echo of " + what)

    print("ok %d" % len(bodies), flush=True)
    # Closing with LINGER set flushes whatever is still queued (the last
    # echo, or the last PUSHed messages) before the process exits.
    sock.close()
    ctx.term()


main()
