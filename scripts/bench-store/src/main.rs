//! The store benchmark: durable writes/s with 1 and 16 writers, latency of a
//! 10,000-key list, watch delivery latency and bytes written per update, for
//! skiff's SQLite store and (when given one) an etcd server on the same
//! machine, plus kine's schema against skiff's through one SQLite harness.
//! All values are 1 KiB. Run it through `scripts/bench-store.sh`.
//!
//! Usage: skiff-bench-store --dir DIR [--etcd URL --etcd-pid PID] [--quick]

mod engine;
mod schemas;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::{Engine, Error};

const VALUE: usize = 1024;

struct Sizes {
    single_writes: usize,
    multi_writes: usize,
    list_keys: usize,
    watch_events: usize,
    update_keys: usize,
    updates: usize,
}

#[derive(Default)]
struct Numbers {
    writes_1: f64,
    writes_16: f64,
    list_ms: f64,
    /// (p50, p99) in ms, from the writer's acknowledgement to the event.
    watch_after_ack: (f64, f64),
    /// (p50, p99) in ms, from sending the write to the event.
    watch_end_to_end: (f64, f64),
    bytes_per_update: f64,
}

fn value(fill: u8) -> Bytes {
    Bytes::from(vec![fill; VALUE])
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Creates `writers × per_writer` keys under `prefix` concurrently; returns
/// writes/s and each key's revision.
async fn create_many(
    e: &Arc<Engine>,
    prefix: &str,
    writers: usize,
    per_writer: usize,
) -> Result<(f64, Vec<(String, i64)>), Error> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..writers {
        let (e, prefix) = (e.clone(), prefix.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let key = format!("{prefix}{t:02}/{i:06}");
                let rev = e.create(&key, value(b'c')).await?;
                out.push((key, rev));
            }
            Ok::<_, Error>(out)
        }));
    }
    let mut keys = Vec::new();
    for t in tasks {
        keys.extend(t.await??);
    }
    Ok((
        (writers * per_writer) as f64 / started.elapsed().as_secs_f64(),
        keys,
    ))
}

async fn run(e: Arc<Engine>, db: Option<&Path>, sizes: &Sizes) -> Result<Numbers, Error> {
    let mut n = Numbers::default();
    eprintln!("[{}] durable writes", e.name());
    n.writes_1 = create_many(&e, "/bench/w1/", 1, sizes.single_writes)
        .await?
        .0;
    n.writes_16 = create_many(&e, "/bench/w16/", 16, sizes.multi_writes / 16)
        .await?
        .0;

    eprintln!("[{}] list", e.name());
    create_many(&e, "/bench/list/", 16, sizes.list_keys / 16).await?;
    let mut times = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let count = e.list("/bench/list/").await?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        if count != sizes.list_keys / 16 * 16 {
            return Err(format!("listed {count} keys").into());
        }
    }
    times.sort_by(f64::total_cmp);
    n.list_ms = percentile(&times, 0.5);

    eprintln!("[{}] watch", e.name());
    let mut rx = e.watch("/bench/watch/").await?;
    let mut sent = Vec::with_capacity(sizes.watch_events);
    for i in 0..sizes.watch_events {
        let key = format!("/bench/watch/{i:06}");
        let t0 = Instant::now();
        e.create(&key, value(b'w')).await?;
        sent.push((key, t0, Instant::now()));
    }
    let mut after_ack = Vec::new();
    let mut end_to_end = Vec::new();
    for (key, t0, acked) in &sent {
        let (got, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await?
            .ok_or("watch ended")?;
        if &got != key {
            return Err(format!("watch delivered {got}, expected {key}").into());
        }
        // Signed: an event may arrive before the writer sees its ack.
        let ms = |a: Instant, b: Instant| {
            if a >= b {
                (a - b).as_secs_f64() * 1e3
            } else {
                -((b - a).as_secs_f64() * 1e3)
            }
        };
        after_ack.push(ms(at, *acked));
        end_to_end.push(ms(at, *t0));
    }
    after_ack.sort_by(f64::total_cmp);
    end_to_end.sort_by(f64::total_cmp);
    n.watch_after_ack = (percentile(&after_ack, 0.5), percentile(&after_ack, 0.99));
    n.watch_end_to_end = (percentile(&end_to_end, 0.5), percentile(&end_to_end, 0.99));

    eprintln!("[{}] bytes per update", e.name());
    let (_, keys) = create_many(&e, "/bench/upd/", 16, sizes.update_keys / 16).await?;
    e.settle(db).await?;
    let before = e.write_bytes();
    let per_writer = sizes.updates / 16;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let mine: Vec<(String, i64)> = keys.iter().skip(t).step_by(16).cloned().collect();
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = mine;
            for i in 0..per_writer {
                let slot = i % mine.len();
                let rev = e
                    .update(&mine[slot].0, value((i % 251) as u8), mine[slot].1)
                    .await?;
                mine[slot].1 = rev;
            }
            Ok::<_, Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    e.settle(db).await?;
    n.bytes_per_update = (e.write_bytes() - before) as f64 / (per_writer * 16) as f64;
    Ok(n)
}

fn ratio(a: f64, b: f64) -> String {
    if b.is_finite() && b != 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

/// A table row: name, how to read it from the numbers, which way is better.
type Row = (&'static str, fn(&Numbers) -> f64, &'static str);

fn print_table(skiff: &Numbers, etcd: Option<&Numbers>, kine_raw: f64, skiff_raw: f64) {
    let rows: [Row; 8] = [
        (
            "durable writes/s, 1 writer",
            |n| n.writes_1,
            "higher is better",
        ),
        (
            "durable writes/s, 16 writers",
            |n| n.writes_16,
            "higher is better",
        ),
        ("list 10,000 keys, p50 ms", |n| n.list_ms, "lower is better"),
        (
            "watch ack→event p50 ms",
            |n| n.watch_after_ack.0,
            "lower is better",
        ),
        (
            "watch ack→event p99 ms",
            |n| n.watch_after_ack.1,
            "lower is better",
        ),
        (
            "watch write→event p50 ms",
            |n| n.watch_end_to_end.0,
            "lower is better",
        ),
        (
            "watch write→event p99 ms",
            |n| n.watch_end_to_end.1,
            "lower is better",
        ),
        (
            "bytes written per update",
            |n| n.bytes_per_update,
            "lower is better",
        ),
    ];
    println!("| metric | skiff | etcd | skiff / etcd | |");
    println!("|---|---:|---:|---:|---|");
    for (name, get, better) in rows {
        let s = get(skiff);
        let (e, r) = match etcd {
            Some(n) => (format!("{:.2}", get(n)), ratio(s, get(n))),
            None => ("–".into(), "–".into()),
        };
        println!("| {name} | {s:.2} | {e} | {r} | {better} |");
    }
    println!();
    println!("| SQLite schema, same harness (16 updates per transaction) | bytes per update |");
    println!("|---|---:|");
    println!("| kine-style (value + old_value, 5 indexes) | {kine_raw:.0} |");
    println!("| skiff (value once in history, current points at it) | {skiff_raw:.0} |");
    println!("| skiff / kine | {} |", ratio(skiff_raw, kine_raw));
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut dir: Option<PathBuf> = None;
    let mut etcd: Option<String> = None;
    let mut etcd_pid: u32 = 0;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--etcd" => etcd = args.next(),
            "--etcd-pid" => etcd_pid = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--quick" => quick = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let dir = dir.ok_or("--dir DIR is required")?;
    let scale = if quick { 10 } else { 1 };
    let sizes = Sizes {
        single_writes: 2_000 / scale,
        multi_writes: 32_000 / scale,
        list_keys: 10_000,
        watch_events: 2_000 / scale,
        update_keys: 1_000,
        updates: 32_000 / scale,
    };

    let db = dir.join("skiff").join("state.db");
    let skiff = run(Arc::new(Engine::skiff(&db).await?), Some(&db), &sizes).await?;
    let etcd = match etcd {
        Some(url) => Some(run(Arc::new(Engine::etcd(&url, etcd_pid).await?), None, &sizes).await?),
        None => None,
    };
    eprintln!("[sqlite schemas] bytes per update");
    let raw_updates = sizes.updates;
    let kine_raw =
        schemas::bytes_per_update(&dir, schemas::Schema::Kine, 1_000, raw_updates, 16, VALUE)?;
    let skiff_raw =
        schemas::bytes_per_update(&dir, schemas::Schema::Skiff, 1_000, raw_updates, 16, VALUE)?;
    print_table(&skiff, etcd.as_ref(), kine_raw, skiff_raw);
    Ok(())
}
