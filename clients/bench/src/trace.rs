//! The editing traces (josephg/editing-traces, CC BY 4.0) the scenarios replay.

use std::io::Read;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// One patch: at code point `pos`, delete `del` code points, then insert `ins`.
#[derive(Clone, Debug, Deserialize)]
pub struct TracePatch(pub usize, pub usize, pub String);

/// A sequential trace: one editor, patches applied in order.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialTrace {
    /// The text after every patch.
    pub end_content: String,
    /// The transactions, in order.
    pub txns: Vec<SequentialTxn>,
}

/// A group of patches made at once (listed in descending position order).
#[derive(Debug, Deserialize)]
pub struct SequentialTxn {
    /// The patches.
    pub patches: Vec<TracePatch>,
}

/// A concurrent trace: several agents, each txn on its own parents.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrentTrace {
    /// The text every correct replay converges to.
    pub end_content: String,
    /// How many agents there are.
    pub num_agents: usize,
    /// The transactions; parents are indexes of earlier ones.
    pub txns: Vec<ConcurrentTxn>,
}

/// One agent's transaction.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrentTxn {
    /// Indexes of the txns it was made on top of (empty: the empty document).
    pub parents: Vec<usize>,
    /// Which agent made it.
    pub agent: usize,
    /// Its patches, positions in the document as that agent saw it.
    pub patches: Vec<TracePatch>,
}

fn read_gz(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .with_context(|| format!("gunzipping {}", path.display()))?;
    Ok(out)
}

/// Loads `sequential_traces/<name>.json.gz` under `dir`.
pub fn sequential(dir: &Path, name: &str) -> anyhow::Result<SequentialTrace> {
    let bytes = read_gz(&dir.join("sequential_traces").join(format!("{name}.json.gz")))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing trace {name}"))
}

/// Loads `concurrent_traces/<name>.json.gz` under `dir`.
pub fn concurrent(dir: &Path, name: &str) -> anyhow::Result<ConcurrentTrace> {
    let bytes = read_gz(&dir.join("concurrent_traces").join(format!("{name}.json.gz")))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing trace {name}"))
}
