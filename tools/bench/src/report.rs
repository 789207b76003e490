//! What a run reports: the rows the figures measure, numbered from the table of figures, printed as one
//! table and written with the machine, the date and the command to BENCHMARKS.md.

use std::fmt::Write as _;

use crate::data;

/// One row of a figure, as its module measures it.
pub struct Row {
    /// Which row of its figure: "" or a letter (the "b" of "2b").
    pub part: &'static str,
    /// What the row measures; the figure's number and the part go before it.
    pub label: String,
    pub ours: String,
    pub floor: String,
    pub ratio: String,
    pub goal: String,
    pub how: String,
}

/// A row under the number its figure has in the table of figures.
pub struct Numbered {
    pub number: u8,
    pub row: Row,
}

impl Numbered {
    /// "2b. Miss vs the previous system's 13 separate queries".
    pub fn title(&self) -> String {
        format!("{}{}. {}", self.number, self.row.part, self.row.label)
    }
}

/// The rows as one Markdown table.
pub fn table(rows: &[Numbered]) -> String {
    let mut out = String::from("| figure | ours | floor | ratio | goal | how |\n|---|---|---|---|---|---|\n");
    for n in rows {
        let r = &n.row;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            n.title(),
            r.ours,
            r.floor,
            r.ratio,
            r.goal,
            r.how
        );
    }
    out
}

/// BENCHMARKS.md: the machine, the date and the command, then the table.
pub fn document(rows: &[Numbered]) -> String {
    format!(
        "# Benchmarks\n\nMachine: {}. Date: {}. Command: `make bench` (dataset: {} tenants, seed `{}`).\n\n\
         Each figure is measured beside its floor in the same run; ratios are ours / floor (for rates,\n\
         ours / floor as a share). Timings on a shared 2-core machine are noisy: compare ratios, not\n\
         absolute numbers, across runs.\n\n{}\n",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        data::TENANTS,
        data::SEED,
        table(rows),
    )
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1048576.0)
        .unwrap_or(0.0);
    format!(
        "{cpu}, {cores} cores, {mem_gib:.0} GiB, {}",
        std::env::consts::ARCH
    )
}
