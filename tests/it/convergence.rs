//! Seeded property test over real HTTP: random concurrent edits from several agents,
//! delivered to servers in different orders (even children before their parents), give
//! the same text and version on every server and in an in-process reference replica.

use plait::protocol::{Patch, TextRange, VersionSet};
use plait::text::{Change, Edit, TextDoc};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use crate::support::client::{request, Conn};
use crate::support::server::{Engine, TestServer};

/// One recorded edit, as the PUT that carries it.
#[derive(Clone, Debug)]
struct Put {
    version: String,
    parents: VersionSet,
    start: u64,
    end: u64,
    content: String,
}

impl Put {
    fn edit(&self) -> Edit {
        Edit {
            version: Some(self.version.clone()),
            fallback_agent: "unused".into(),
            parents: Some(self.parents.clone()),
            change: Change::Patches(vec![Patch {
                range: TextRange::absolute(self.start, self.end),
                content: self.content.clone(),
            }]),
        }
    }
}

const PIECES: &[&str] = &["a", "b", "é", "😀", "xy", "👍z", " ", "\n", "ü😀"];

/// Agents edit their own replicas and now and then catch up with the global log.
fn generate(seed: u64, agents: usize, edits: usize) -> (Vec<Put>, TextDoc) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut replicas: Vec<TextDoc> = (0..agents).map(|_| TextDoc::new()).collect();
    let mut seen = vec![0usize; agents];
    let mut log: Vec<Put> = Vec::new();
    for _ in 0..edits {
        let a = rng.random_range(0..agents);
        if rng.random_bool(0.5) {
            for put in &log[seen[a]..] {
                replicas[a].apply(put.edit()).unwrap();
            }
            seen[a] = log.len();
        }
        let doc = &mut replicas[a];
        let len = doc.len_chars() as u64;
        let start = rng.random_range(0..=len);
        let end = start + rng.random_range(0..=(len - start).min(3));
        let mut content: String = (0..rng.random_range(0..3)).map(|_| *PIECES.choose(&mut rng).unwrap()).collect();
        if start == end && content.is_empty() {
            content.push('x');
        }
        let agent = format!("agent{a}");
        let count = (end - start) + content.chars().count() as u64;
        let put = Put {
            version: format!("{agent}-{}", doc.next_seq(&agent) + count - 1),
            parents: doc.version(),
            start,
            end,
            content,
        };
        doc.apply(put.edit()).unwrap();
        log.push(put);
    }
    let mut reference = TextDoc::new();
    for put in &log {
        reference.apply(put.edit()).unwrap();
    }
    (log, reference)
}

fn headers(put: &Put) -> (String, String, String) {
    (
        VersionSet::new([put.version.clone()]).to_header(),
        put.parents.to_header(),
        format!("text [{}:{}]", put.start, put.end),
    )
}

async fn send(conn: &mut Conn, put: &Put) {
    let (v, p, r) = headers(put);
    let res = conn
        .request("PUT", "/prop", &[("Version", &v), ("Parents", &p), ("Content-Range", &r)], put.content.as_bytes())
        .await;
    assert_eq!(res.status, 200, "{put:?}: {}", res.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_concurrent_edits_converge_in_any_delivery_order() {
    for seed in [7u64, 8, 9] {
        let (log, reference) = generate(seed, 3, 80);
        let mut rng = StdRng::seed_from_u64(seed ^ 0xdead);
        // Server A: every PUT at once, in a random order (children may come first and
        // wait for their parents), plus some duplicates of already-sent PUTs.
        let a = TestServer::start(Engine::Memory).await;
        let mut shuffled = log.clone();
        shuffled.shuffle(&mut rng);
        let extra: Vec<Put> = shuffled.iter().take(10).cloned().collect();
        shuffled.extend(extra);
        let tasks: Vec<_> = shuffled
            .into_iter()
            .map(|put| {
                let addr = a.addr;
                tokio::spawn(async move { send(&mut Conn::open(addr).await, &put).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Server B (RocksDB): one connection, the log in order, each PUT sent twice.
        let b = TestServer::start(Engine::Rocks).await;
        let mut conn = Conn::open(b.addr).await;
        for put in &log {
            send(&mut conn, put).await;
            send(&mut conn, put).await;
        }
        for s in [&a, &b] {
            let r = request(s.addr, "GET", "/prop", &[], b"").await;
            assert_eq!(r.text(), reference.text(), "seed {seed}");
            assert_eq!(r.header("version").unwrap(), reference.version().to_header(), "seed {seed}");
        }
        a.stop().await;
        b.stop().await;
    }
}
