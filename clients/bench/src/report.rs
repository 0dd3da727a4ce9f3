//! Benchmark results: one row per measured figure, with its reference measured in the same
//! run and the target ratio, printed as a Markdown table (pasted into docs/BENCHMARKS.md).

use std::fmt::Write as _;

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Row {
    /// "B1", "B4 (10k)", ...
    pub scenario: String,
    /// What was measured, e.g. "server CPU per PATCH".
    pub metric: String,
    /// The figure.
    pub value: f64,
    /// Its unit, e.g. "µs", "ms", "KiB", "writes/s".
    pub unit: &'static str,
    /// The reference it is compared with: what it is and its value (same unit).
    pub reference: Option<(String, f64)>,
    /// The target, as a ratio to the reference: `value / reference <= max_ratio`, or for
    /// throughputs `value / reference >= min_ratio`.
    pub target: Target,
}

/// How a row is judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// No target: context only.
    None,
    /// value / reference must be at most this.
    AtMost(f64),
    /// value / reference must be at least this.
    AtLeast(f64),
    /// value itself must be at most this (e.g. a latency bound).
    AbsoluteAtMost(f64),
}

impl Row {
    /// A row without a target.
    pub fn info(scenario: &str, metric: &str, value: f64, unit: &'static str) -> Row {
        Row { scenario: scenario.into(), metric: metric.into(), value, unit, reference: None, target: Target::None }
    }

    /// value / reference, when there is a reference.
    pub fn ratio(&self) -> Option<f64> {
        self.reference.as_ref().map(|(_, r)| if *r > 0.0 { self.value / r } else { f64::INFINITY })
    }

    /// Whether the target holds (None when there is none).
    pub fn pass(&self) -> Option<bool> {
        match (self.target, self.ratio()) {
            (Target::None, _) => None,
            (Target::AtMost(max), Some(r)) => Some(r <= max),
            (Target::AtLeast(min), Some(r)) => Some(r >= min),
            (Target::AbsoluteAtMost(max), _) => Some(self.value <= max),
            (_, None) => None,
        }
    }
}

fn num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | metric | value | reference | ratio | target | ok |\n|---|---|---:|---|---:|---|---|\n",
    );
    for r in rows {
        let reference =
            r.reference.as_ref().map_or("—".to_string(), |(what, v)| format!("{what}: {} {}", num(*v), r.unit));
        let ratio = r.ratio().map_or("—".to_string(), |x| format!("{x:.2}×"));
        let target = match r.target {
            Target::None => "—".to_string(),
            Target::AtMost(x) => format!("≤ {x}×"),
            Target::AtLeast(x) => format!("≥ {x}×"),
            Target::AbsoluteAtMost(x) => format!("≤ {} {}", num(x), r.unit),
        };
        let ok = match r.pass() {
            None => "",
            Some(true) => "yes",
            Some(false) => "**no**",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} {} | {reference} | {ratio} | {target} | {ok} |",
            r.scenario,
            r.metric,
            num(r.value),
            r.unit
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_verdicts() {
        let mut row = Row::info("B1", "cpu", 3.0, "µs");
        assert_eq!((row.ratio(), row.pass()), (None, None));
        row.reference = Some(("R".into(), 2.0));
        row.target = Target::AtMost(1.5);
        assert_eq!((row.ratio(), row.pass()), (Some(1.5), Some(true)));
        row.target = Target::AtLeast(2.0);
        assert_eq!(row.pass(), Some(false));
        assert!(table(&[row]).contains("| B1 | cpu | 3.00 µs | R: 2.00 µs | 1.50× | ≥ 2× | **no** |"));
    }
}
