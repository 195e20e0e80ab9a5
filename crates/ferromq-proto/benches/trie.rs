//! The subscription trie: matching a message against many subscriptions,
//! and subscribing/cancelling. Matching cost should follow the topic's
//! length and the number of matches, not the number of subscriptions.
//!
//! `cargo bench -p ferromq-proto --bench trie`

// criterion's macros define undocumented public functions.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use ferromq_proto::routing::SubscriptionTrie;

/// `n` distinct topics like `weather.00042.temp`, one subscriber each.
fn trie_with(n: usize) -> SubscriptionTrie<u64> {
    let mut t = SubscriptionTrie::new();
    for i in 0..n {
        t.subscribe(format!("weather.{i:05}.temp").as_bytes(), i as u64);
    }
    t
}

fn matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("match");
    for n in [10usize, 1_000, 100_000] {
        let t = trie_with(n);
        // One subscriber matches; all the others share a long prefix with it.
        let topic = format!("weather.{:05}.temp 21C", n / 2);
        g.bench_with_input(BenchmarkId::new("one-of", n), &topic, |b, topic| {
            b.iter(|| {
                let mut hits = 0;
                t.for_each_match(black_box(topic.as_bytes()), |_| hits += 1);
                assert_eq!(hits, 1);
                hits
            })
        });
        g.bench_with_input(BenchmarkId::new("none-of", n), &(), |b, ()| {
            b.iter(|| t.matches(black_box(b"sports.football 3-1")))
        });
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    let mut t = trie_with(10_000);
    c.bench_function("subscribe+cancel/10000", |b| {
        b.iter(|| {
            assert!(t.subscribe(black_box(b"weather.99999.humidity"), 7));
            assert!(t.unsubscribe(black_box(b"weather.99999.humidity"), 7));
        })
    });
}

criterion_group!(benches, matching, churn);
criterion_main!(benches);
