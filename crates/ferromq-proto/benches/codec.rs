//! Frame encoder and decoder: the work done per frame on every connection.
//!
//! `cargo bench -p ferromq-proto --bench codec`

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ferromq_proto::wire::frame::{encode_frame, FrameDecoder};

/// Frames per iteration: enough to amortise the loop, as a batched read
/// is, while the buffer stays within the caches (about 1 MiB).
fn frames(size: usize) -> usize {
    ((1 << 20) / size).clamp(16, 1000)
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for size in [16usize, 256, 4096, 65536] {
        let body = vec![0xA5u8; size];
        let n = frames(size);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            let mut out = BytesMut::with_capacity(n * (size + 9));
            b.iter(|| {
                out.clear();
                for i in 0..n {
                    encode_frame(&mut out, i % 3 == 0, false, black_box(body));
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for size in [16usize, 256, 4096, 65536] {
        let n = frames(size);
        let mut wire = BytesMut::new();
        for i in 0..n {
            encode_frame(&mut wire, i % 3 == 0, false, &vec![0x5Au8; size]);
        }
        let wire = wire.freeze();
        let decoder = FrameDecoder::new(None);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &wire, |b, wire| {
            b.iter(|| {
                // A fresh buffer holding many frames, as after one large read;
                // frames are zero-copy slices of it.
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(frame) = decoder.decode(&mut buf).expect("valid frames") {
                    n += frame.body.len();
                }
                black_box(n)
            })
        });
        // As connections decode message data: small bodies copied inline,
        // the others sliced as above.
        g.bench_with_input(BenchmarkId::new("part", size), &wire, |b, wire| {
            b.iter(|| {
                let mut buf = BytesMut::from(&wire[..]);
                let mut n = 0;
                while let Some(part) = decoder.decode_part(&mut buf).expect("valid frames") {
                    n += part.body.len();
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
