//! The `ferromq` command: ZeroMQ sockets from the shell.
//!
//! ```text
//! ferromq <TYPE> [--bind EP]... [--connect EP]... [options]
//! ```
//! Each received message is printed on one line, frames joined by the
//! delimiter; frames that are not printable UTF-8 are printed as `0x` + hex.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod perf;

use clap::{Args, Parser, Subcommand};
use ferromq::{Bytes, Context, Message, Socket, SocketType};

/// ZeroMQ sockets from the shell, speaking ZMTP 3.1 to libzmq and friends.
#[derive(Parser, Debug)]
#[command(name = "ferromq", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Exclusive pair: sends and receives.
    Pair(SockArgs),
    /// Request: sends each message and prints its reply.
    Req(SockArgs),
    /// Reply: prints each request and answers it (--echo, or the --send messages in turn).
    Rep(SockArgs),
    /// Dealer: sends round-robin, receives fair-queued.
    Dealer(SockArgs),
    /// Router: prints [routing id|frames...]; sends messages whose first frame is a routing id.
    Router(SockArgs),
    /// Push: sends round-robin.
    Push(SockArgs),
    /// Pull: prints what arrives.
    Pull(SockArgs),
    /// Publisher: sends to every matching subscriber.
    Pub(SockArgs),
    /// Subscriber: prints what matches --subscribe (default everything).
    Sub(SockArgs),
    /// Publisher that also prints received subscriptions (e.g. 0x014142).
    Xpub(SockArgs),
    /// Subscriber that sends subscriptions as messages; --subscribe prefixes are sent first.
    Xsub(SockArgs),
    /// Forward between two sockets (broker, forwarder, streamer) until killed or --timeout.
    Proxy(ProxyArgs),
    /// Measure throughput and latency locally (both sides in this process), with progress.
    Perf(perf::PerfArgs),
}

/// `ferromq proxy` arguments. A socket is `TYPE@EP` (bind) or `TYPE>EP` (connect),
/// e.g. `xsub@tcp://*:5559`, `dealer>tcp://127.0.0.1:5560`.
#[derive(Args, Debug, Clone)]
struct ProxyArgs {
    /// The frontend socket, e.g. router@tcp://*:5559 or xsub@tcp://*:5559
    #[arg(long, value_name = "TYPE@EP")]
    frontend: String,
    /// The backend socket, e.g. dealer@tcp://*:5560 or xpub@tcp://*:5560
    #[arg(long, value_name = "TYPE@EP")]
    backend: String,
    /// A socket receiving a copy of every message, e.g. push@tcp://*:5561
    #[arg(long, value_name = "TYPE@EP")]
    capture: Option<String>,
    /// Stop with an error after this many milliseconds.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
}

#[derive(Args, Debug, Clone)]
struct SockArgs {
    /// Bind to an endpoint (repeatable), e.g. tcp://*:5555 or tcp://127.0.0.1:*
    #[arg(long = "bind", value_name = "EP")]
    bind: Vec<String>,
    /// Connect to an endpoint (repeatable), e.g. tcp://127.0.0.1:5555
    #[arg(long = "connect", value_name = "EP")]
    connect: Vec<String>,
    /// A message to send (repeatable, in order); frames split on the delimiter.
    /// Without --send, a type that sends reads one message per stdin line.
    #[arg(long = "send", value_name = "MSG")]
    send: Vec<String>,
    /// Receive N messages, then exit (REP/ROUTER with --echo: serve N requests).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Frame separator for input and output.
    #[arg(long, default_value = "|", value_name = "D")]
    delimiter: String,
    /// REP/ROUTER: reply with the received message.
    #[arg(long)]
    echo: bool,
    /// Routing id of this socket.
    #[arg(long, value_name = "ID")]
    identity: Option<String>,
    /// SUB/XSUB prefix to subscribe to (repeatable; default everything).
    #[arg(long, value_name = "P")]
    subscribe: Vec<String>,
    /// Wait this many milliseconds before the first send.
    #[arg(long, value_name = "MS")]
    delay: Option<u64>,
    /// Fail, promptly and with a message, if the work is not done in this many milliseconds.
    #[arg(long, value_name = "MS")]
    timeout: Option<u64>,
    /// Frames are hex on input and output.
    #[arg(long)]
    hex: bool,
}

/// A one-line failure.
struct Fail(String);

impl<E: std::fmt::Display> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind::*;
            if matches!(
                e.kind(),
                DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string();
            let line = msg.lines().next().unwrap_or("invalid arguments");
            eprintln!("ferromq: {}", line.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let (kind, args) = match cli.cmd {
        Cmd::Pair(a) => (SocketType::Pair, a),
        Cmd::Req(a) => (SocketType::Req, a),
        Cmd::Rep(a) => (SocketType::Rep, a),
        Cmd::Dealer(a) => (SocketType::Dealer, a),
        Cmd::Router(a) => (SocketType::Router, a),
        Cmd::Push(a) => (SocketType::Push, a),
        Cmd::Pull(a) => (SocketType::Pull, a),
        Cmd::Pub(a) => (SocketType::Pub, a),
        Cmd::Sub(a) => (SocketType::Sub, a),
        Cmd::Xpub(a) => (SocketType::XPub, a),
        Cmd::Xsub(a) => (SocketType::XSub, a),
        Cmd::Perf(p) => {
            return match perf::run(&p) {
                Ok(()) => ExitCode::SUCCESS,
                Err(Fail(msg)) => {
                    eprintln!("ferromq: {msg}");
                    ExitCode::from(1)
                }
            };
        }
        Cmd::Proxy(p) => {
            if let Some(ms) = p.timeout {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms));
                    fail_once(&format!("timed out after {ms} ms"));
                    std::process::exit(3);
                });
            }
            return match run_proxy(&p) {
                Ok(()) => ExitCode::SUCCESS,
                Err(Fail(msg)) => {
                    fail_once(&msg);
                    ExitCode::from(1)
                }
            };
        }
    };
    if let Some(ms) = args.timeout {
        // The watchdog makes --timeout prompt whatever the socket is doing.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            fail_once(&format!("timed out after {ms} ms"));
            std::process::exit(3);
        });
    }
    match run(kind, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(msg)) => {
            fail_once(&msg);
            ExitCode::from(1)
        }
    }
}

fn run(kind: SocketType, args: &SockArgs) -> Result<(), Fail> {
    if args.bind.is_empty() && args.connect.is_empty() {
        return Err(Fail(
            "give at least one --bind or --connect endpoint".into(),
        ));
    }
    if args.delimiter.is_empty() {
        return Err(Fail("--delimiter must not be empty".into()));
    }
    let subscriber = matches!(kind, SocketType::Sub | SocketType::XSub);
    if !args.subscribe.is_empty() && !subscriber {
        return Err(Fail(format!("--subscribe applies to SUB/XSUB, not {kind}")));
    }
    if args.echo && !matches!(kind, SocketType::Rep | SocketType::Router) {
        return Err(Fail(format!(
            "--echo applies to REP and ROUTER, not {kind}"
        )));
    }
    let deadline = args
        .timeout
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let fmt = Format {
        delimiter: args.delimiter.clone(),
        hex: args.hex,
    };
    let to_send = args
        .send
        .iter()
        .map(|s| fmt.parse(s))
        .collect::<Result<Vec<_>, _>>()?;

    let ctx = Context::new();
    let socket = ctx.socket(kind)?;
    if let Some(id) = &args.identity {
        socket.set_routing_id(fmt.parse_frame(id)?)?;
    }
    if let Some(d) = deadline {
        socket.set_linger(Some(d.saturating_duration_since(Instant::now())));
    }
    if subscriber {
        let prefixes = if args.subscribe.is_empty() {
            vec![String::new()]
        } else {
            args.subscribe.clone()
        };
        for p in &prefixes {
            socket.subscribe(fmt.parse_frame(p)?)?;
        }
    }
    for ep in &args.bind {
        socket
            .bind(ep)
            .map_err(|e| Fail(format!("cannot bind {ep}: {e}")))?;
    }
    for ep in &args.connect {
        socket
            .connect(ep)
            .map_err(|e| Fail(format!("cannot connect {ep}: {e}")))?;
    }
    let mut out = std::io::stdout().lock();
    let mut print = |m: &Message| -> Result<(), Fail> {
        writeln!(out, "{}", fmt.render(m))?;
        out.flush()?;
        Ok(())
    };
    let delay = || {
        if let Some(ms) = args.delay {
            std::thread::sleep(Duration::from_millis(ms));
        }
    };

    match kind {
        SocketType::Req => {
            delay();
            for m in Source::new(to_send, &fmt) {
                socket.send(m?)?;
                print(&socket.recv()?)?;
            }
        }
        SocketType::Rep | SocketType::Router if args.echo || kind == SocketType::Rep => {
            if !args.echo && to_send.is_empty() {
                return Err(Fail("rep needs --echo or --send replies".into()));
            }
            let mut replies = to_send.iter().cycle();
            let mut served = 0;
            while args.count.is_none_or(|n| served < n) {
                let m = socket.recv()?;
                print(&m)?;
                let reply = if args.echo {
                    m
                } else {
                    replies.next().cloned().unwrap_or_default()
                };
                socket.send(reply)?;
                served += 1;
            }
        }
        SocketType::Pull | SocketType::Sub => receive(&socket, args.count, &mut print)?,
        _ => {
            // Sending types; those that also receive print --count replies.
            let sender = socket.clone();
            let sends = std::thread::scope(|s| -> Result<(), Fail> {
                let h = s.spawn(|| -> Result<(), Fail> {
                    delay();
                    for m in Source::new(to_send, &fmt) {
                        sender.send(m?)?;
                    }
                    Ok(())
                });
                if args.count.is_some() && !matches!(kind, SocketType::Push | SocketType::Pub) {
                    receive(&socket, args.count, &mut print)?;
                }
                h.join().map_err(|_| Fail("sender thread failed".into()))?
            });
            sends?;
        }
    }
    drop(socket);
    ctx.term()
        .map_err(|e| Fail(format!("not all messages were delivered: {e}")))
}

/// Makes the socket a `TYPE@EP` / `TYPE>EP` spec names.
fn proxy_socket(ctx: &Context, spec: &str) -> Result<Socket, Fail> {
    let (kind, ep, bind) = match (spec.split_once('@'), spec.split_once('>')) {
        (Some((k, e)), _) => (k, e, true),
        (None, Some((k, e))) => (k, e, false),
        _ => {
            return Err(Fail(format!(
                "{spec:?}: want TYPE@ENDPOINT (bind) or TYPE>ENDPOINT (connect)"
            )))
        }
    };
    let kind: SocketType = kind.parse()?;
    let socket = ctx.socket(kind)?;
    let r = if bind {
        socket.bind(ep)
    } else {
        socket.connect(ep)
    };
    r.map_err(|e| {
        Fail(format!(
            "cannot {} {ep}: {e}",
            if bind { "bind" } else { "connect" }
        ))
    })?;
    Ok(socket)
}

fn run_proxy(args: &ProxyArgs) -> Result<(), Fail> {
    let ctx = Context::new();
    let frontend = proxy_socket(&ctx, &args.frontend)?;
    let backend = proxy_socket(&ctx, &args.backend)?;
    let capture = args
        .capture
        .as_deref()
        .map(|c| proxy_socket(&ctx, c))
        .transpose()?;
    ferromq::proxy(&frontend, &backend, capture.as_ref())?;
    Ok(())
}

fn receive(
    socket: &Socket,
    count: Option<u64>,
    print: &mut impl FnMut(&Message) -> Result<(), Fail>,
) -> Result<(), Fail> {
    let mut got = 0;
    while count.is_none_or(|n| got < n) {
        print(&socket.recv()?)?;
        got += 1;
    }
    Ok(())
}

/// Messages to send: the --send list, or else stdin lines.
enum Source<'a> {
    List(std::vec::IntoIter<Message>),
    Stdin(std::io::Lines<std::io::StdinLock<'static>>, &'a Format),
}

impl<'a> Source<'a> {
    fn new(list: Vec<Message>, fmt: &'a Format) -> Self {
        if list.is_empty() {
            Source::Stdin(std::io::stdin().lock().lines(), fmt)
        } else {
            Source::List(list.into_iter())
        }
    }
}

impl Iterator for Source<'_> {
    type Item = Result<Message, Fail>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Source::List(it) => it.next().map(Ok),
            Source::Stdin(lines, fmt) => lines.next().map(|l| fmt.parse(&l?)),
        }
    }
}

/// How frames are written and read on the command line.
struct Format {
    delimiter: String,
    hex: bool,
}

impl Format {
    fn parse(&self, line: &str) -> Result<Message, Fail> {
        line.split(self.delimiter.as_str())
            .map(|f| self.parse_frame(f))
            .collect()
    }

    fn parse_frame(&self, f: &str) -> Result<Bytes, Fail> {
        if !self.hex {
            return Ok(Bytes::copy_from_slice(f.as_bytes()));
        }
        let digits = f.strip_prefix("0x").unwrap_or(f);
        if digits.len() % 2 != 0 {
            return Err(Fail(format!("odd number of hex digits in {f:?}")));
        }
        (0..digits.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(digits.get(i..i + 2).unwrap_or("zz"), 16)
                    .map_err(|_| Fail(format!("invalid hex frame {f:?}")))
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Bytes::from)
    }

    fn render(&self, m: &Message) -> String {
        m.iter()
            .map(|f| self.render_frame(f))
            .collect::<Vec<_>>()
            .join(&self.delimiter)
    }

    fn render_frame(&self, f: &[u8]) -> String {
        match std::str::from_utf8(f) {
            Ok(s) if !self.hex && !s.chars().any(char::is_control) => s.to_string(),
            _ => {
                let mut s = String::with_capacity(2 + f.len() * 2);
                s.push_str("0x");
                for b in f {
                    s.push_str(&format!("{b:02x}"));
                }
                s
            }
        }
    }
}

/// Reports why the command failed, once: at a `--timeout` deadline the
/// watchdog and the linger that ends with it may both fail at the same
/// moment, and a busy machine let both speak.
fn fail_once(msg: &str) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::SeqCst) {
        eprintln!("ferromq: {msg}");
    }
}
