/* Built by tests/abi.rs against ferromq's zmq.h and libzmq.so: checks the
 * struct layouts C callers depend on, then makes a real exchange through the
 * C API. Prints "abi ok" and exits 0 on success. */
#include <assert.h>
#include <signal.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define CHECK(c) do { if (!(c)) { fprintf (stderr, "failed: %s (line %d, errno %d %s)\n", #c, __LINE__, zmq_errno (), zmq_strerror (zmq_errno ())); return 1; } } while (0)

static int freed = 0;
static void on_alarm (int sig) { (void) sig; }
static void free_fn (void *data, void *hint) { (void) data; (void) hint; freed++; }

int main (void)
{
    CHECK (sizeof (zmq_msg_t) == 64);
    CHECK (_Alignof (zmq_msg_t) == sizeof (void *));
    CHECK (sizeof (zmq_pollitem_t) == 16);
    CHECK (offsetof (zmq_pollitem_t, fd) == 8);
    CHECK (offsetof (zmq_pollitem_t, events) == 12);
    CHECK (offsetof (zmq_pollitem_t, revents) == 14);

    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    CHECK (major == 4 && minor == 3 && patch == 5);

    CHECK (zmq_has ("ipc") == 1 && zmq_has ("curve") == 0 && zmq_has ("draft") == 0);

    void *ctx = zmq_ctx_new ();
    CHECK (ctx);
    void *rep = zmq_socket (ctx, ZMQ_REP);
    void *req = zmq_socket (ctx, ZMQ_REQ);
    CHECK (rep && req);
    CHECK (zmq_bind (rep, "tcp://127.0.0.1:*") == 0);
    char ep[256];
    size_t len = sizeof ep;
    CHECK (zmq_getsockopt (rep, ZMQ_LAST_ENDPOINT, ep, &len) == 0);
    CHECK (len == strlen (ep) + 1);
    CHECK (zmq_connect (req, ep) == 0);

    /* Multipart request: a zero-copy frame, then a copied one. */
    static char payload[] = "zero-copy";
    zmq_msg_t part;
    CHECK (zmq_msg_init_data (&part, payload, 9, free_fn, NULL) == 0);
    CHECK (zmq_msg_send (&part, req, ZMQ_SNDMORE) == 9);
    CHECK (zmq_send (req, "tail", 4, 0) == 4);
    CHECK (zmq_send (req, "x", 1, 0) == -1 && zmq_errno () == EFSM);

    zmq_pollitem_t items[] = {{rep, 0, ZMQ_POLLIN, 0}};
    CHECK (zmq_poll (items, 1, 5000) == 1 && (items[0].revents & ZMQ_POLLIN));

    zmq_msg_t msg;
    CHECK (zmq_msg_init (&msg) == 0);
    CHECK (zmq_msg_recv (&msg, rep, 0) == 9);
    CHECK (memcmp (zmq_msg_data (&msg), "zero-copy", 9) == 0 && zmq_msg_more (&msg));
    /* Per-message metadata, as libzmq's zmq_msg_gets reports it. */
    CHECK (strcmp (zmq_msg_gets (&msg, "Socket-Type"), "REQ") == 0);
    CHECK (strcmp (zmq_msg_gets (&msg, "Peer-Address"), "127.0.0.1") == 0);
    CHECK (zmq_msg_gets (&msg, "No-Such-Property") == NULL && zmq_errno () == EINVAL);
    zmq_msg_t copy;
    CHECK (zmq_msg_init (&copy) == 0 && zmq_msg_copy (&copy, &msg) == 0);
    CHECK (strcmp (zmq_msg_gets (&copy, "Socket-Type"), "REQ") == 0);
    CHECK (zmq_msg_close (&copy) == 0);
    int more; size_t more_len = sizeof more;
    CHECK (zmq_getsockopt (rep, ZMQ_RCVMORE, &more, &more_len) == 0 && more == 1);
    char buf[2];
    CHECK (zmq_recv (rep, buf, sizeof buf, 0) == 4); /* truncated, full size returned */
    CHECK (memcmp (buf, "ta", 2) == 0);
    CHECK (zmq_send (rep, "ok", 2, 0) == 2);
    CHECK (zmq_recv (req, buf, sizeof buf, 0) == 2 && memcmp (buf, "ok", 2) == 0);
    CHECK (zmq_msg_close (&msg) == 0);

    /* A signal interrupts a blocking receive with EINTR, as in libzmq. */
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART */
    CHECK (sigaction (SIGALRM, &sa, NULL) == 0);
    alarm (1);
    CHECK (zmq_recv (rep, buf, sizeof buf, 0) == -1 && zmq_errno () == EINTR);

    /* Errors a C caller relies on. */
    CHECK (zmq_recv (req, buf, sizeof buf, ZMQ_DONTWAIT) == -1 && zmq_errno () == EFSM);
    CHECK (zmq_connect (req, "bogus://x") == -1 && zmq_errno () == EPROTONOSUPPORT);
    int bad = 1;
    CHECK (zmq_setsockopt (req, 9999, &bad, sizeof bad) == -1 && zmq_errno () == EINVAL);
    int events; size_t ev_len = sizeof events;
    CHECK (zmq_getsockopt (req, ZMQ_EVENTS, &events, &ev_len) == 0 && (events & ZMQ_POLLOUT));

    /* tcp options read back as set (and apply to the next connections). */
    int v = 4096, got = 0; size_t got_len = sizeof got;
    CHECK (zmq_setsockopt (req, ZMQ_SNDBUF, &v, sizeof v) == 0);
    CHECK (zmq_getsockopt (req, ZMQ_SNDBUF, &got, &got_len) == 0 && got == 4096);
    /* Options without effect here keep libzmq's defaults and what is set;
       asking for PLAIN authentication fails instead of being ignored. */
    got_len = sizeof got;
    CHECK (zmq_getsockopt (req, ZMQ_RATE, &got, &got_len) == 0 && got == 100);
    int rate = 500;
    CHECK (zmq_setsockopt (req, ZMQ_RATE, &rate, sizeof rate) == 0);
    got_len = sizeof got;
    CHECK (zmq_getsockopt (req, ZMQ_RATE, &got, &got_len) == 0 && got == 500);
    uint64_t affinity = 3; size_t aff_len = sizeof affinity;
    CHECK (zmq_setsockopt (req, ZMQ_AFFINITY, &affinity, sizeof affinity) == 0);
    affinity = 0;
    CHECK (zmq_getsockopt (req, ZMQ_AFFINITY, &affinity, &aff_len) == 0 && affinity == 3);
    int on = 1;
    CHECK (zmq_setsockopt (req, ZMQ_PLAIN_SERVER, &on, sizeof on) == -1 && zmq_errno () == EINVAL);
    v = 1;
    CHECK (zmq_setsockopt (req, ZMQ_TCP_KEEPALIVE, &v, sizeof v) == 0);
    CHECK (zmq_getsockopt (req, ZMQ_TCP_KEEPALIVE, &got, &got_len) == 0 && got == 1);
    v = 2;
    CHECK (zmq_setsockopt (req, ZMQ_TCP_KEEPALIVE, &v, sizeof v) == -1 && zmq_errno () == EINVAL);

    /* ZMQ_USE_FD: a bind serves the caller's listening socket; anything
       else is refused with a clear errno, and the caller keeps its fd. */
    void *adopter = zmq_socket (ctx, ZMQ_PULL);
    int not_listening = socket (AF_INET, SOCK_STREAM, 0);
    CHECK (adopter && not_listening >= 0);
    CHECK (zmq_setsockopt (adopter, ZMQ_USE_FD, &not_listening, sizeof not_listening) == 0);
    CHECK (zmq_bind (adopter, "tcp://127.0.0.1:1") == -1 && zmq_errno () == EINVAL);
    CHECK (fcntl (not_listening, F_GETFD) != -1);
    CHECK (close (not_listening) == 0);
    CHECK (zmq_bind (adopter, "tcp://127.0.0.1:1") == -1 && zmq_errno () == EBADF);
    int minus_two = -2;
    CHECK (zmq_setsockopt (adopter, ZMQ_USE_FD, &minus_two, sizeof minus_two) == -1 && zmq_errno () == EINVAL);
    int none = -1;
    CHECK (zmq_setsockopt (adopter, ZMQ_USE_FD, &none, sizeof none) == 0);
    CHECK (zmq_close (adopter) == 0);

    int linger = 0;
    CHECK (zmq_setsockopt (req, ZMQ_LINGER, &linger, sizeof linger) == 0);
    CHECK (zmq_setsockopt (rep, ZMQ_LINGER, &linger, sizeof linger) == 0);
    /* ROUTER: a lone routing-id frame is dropped, as libzmq does; with
       ROUTER_MANDATORY an unknown peer fails at the first frame. */
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    CHECK (router && zmq_send (router, "nobody", 6, 0) == 6);
    int mandatory = 1;
    CHECK (zmq_setsockopt (router, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory) == 0);
    CHECK (zmq_send (router, "nobody", 6, ZMQ_SNDMORE) == -1 && zmq_errno () == EHOSTUNREACH);
    CHECK (zmq_close (router) == 0);
    CHECK (zmq_close (req) == 0);
    CHECK (zmq_close (req) == -1 && zmq_errno () == ENOTSOCK);
    CHECK (zmq_close (rep) == 0);
    CHECK (zmq_ctx_term (ctx) == 0);

    char z85[11];
    const uint8_t raw[8] = {0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B};
    CHECK (zmq_z85_encode (z85, raw, 8) && strcmp (z85, "HelloWorld") == 0);
    CHECK (strcmp (zmq_strerror (ETERM), "Context was terminated") == 0);

    /* The free function runs once the frame is gone (on a library thread). */
    for (int i = 0; i < 500 && !freed; i++)
        zmq_sleep (0), zmq_poll (NULL, 0, 10);
    CHECK (freed == 1);
    puts ("abi ok");
    return 0;
}
