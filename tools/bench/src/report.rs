//! What a run reports: the rows the figures measure, numbered from the table of figures; the goals they
//! are held against, checked where a program can; printed as a table of goals and one of every row,
//! and written with the machine, the date and the command to BENCHMARKS.md.

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
    /// The goal as people read it: "p50 ≤ 1.3×"; "(context)" or a dash when the row has none.
    pub goal: String,
    /// The same goal as checks of measured values, all of which must hold; none when the goal has a
    /// part no program can check ("well inside", a bound on something this row does not measure).
    pub checks: Vec<Check>,
    pub how: String,
}

/// A bound a measured value should keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Strictly less: "fewer".
    Below(f64),
    Exactly(f64),
}

impl Goal {
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Goal::AtMost(bound) => value <= bound,
            Goal::AtLeast(bound) => value >= bound,
            Goal::Below(bound) => value < bound,
            Goal::Exactly(bound) => value == bound,
        }
    }
}

/// A measured value held against its goal.
pub struct Check {
    pub goal: Goal,
    pub value: f64,
    /// The value as the goal table shows it, in the goal's terms ("p50 1.61×").
    pub shown: String,
}

impl Check {
    pub fn new(goal: Goal, value: f64, shown: impl Into<String>) -> Self {
        Self {
            goal,
            value,
            shown: shown.into(),
        }
    }

    fn met(&self) -> bool {
        self.goal.met_by(self.value)
    }
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
fn table(rows: &[Numbered]) -> String {
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

/// The rows that have a goal: the goal, the latest result and whether it was met ("n.a." when the goal
/// has no checks).
fn goals(rows: &[Numbered]) -> String {
    let mut out = String::from("| figure | goal | latest result | met? |\n|---|---|---|---|\n");
    for n in rows.iter().filter(|n| has_goal(&n.row.goal)) {
        let checks = &n.row.checks;
        let (result, met) = if checks.is_empty() {
            (n.row.ours.clone(), "n.a.")
        } else {
            let shown: Vec<&str> = checks.iter().map(|c| c.shown.as_str()).collect();
            let met = if checks.iter().all(Check::met) {
                "yes"
            } else {
                "no"
            };
            (shown.join("; "), met)
        };
        let _ = writeln!(out, "| {} | {} | {result} | {met} |", n.title(), n.row.goal);
    }
    out
}

/// Whether a row's goal text states a goal (rather than "(context)" or a dash).
fn has_goal(goal: &str) -> bool {
    !matches!(goal, "" | "(context)" | "-" | "—")
}

/// The goals, then every row.
pub fn tables(rows: &[Numbered]) -> String {
    format!("{}\n{}", goals(rows), table(rows))
}

/// BENCHMARKS.md: the machine, the date and the command, then the goals and every row.
pub fn document(rows: &[Numbered]) -> String {
    format!(
        "# Benchmarks\n\nMachine: {}. Date: {}. Command: `make bench` (dataset: {} tenants, seed `{}`).\n\n\
         Each figure is measured beside its floor in the same run; ratios are ours / floor (for rates,\n\
         ours / floor as a share). Timings on a shared 2-core machine are noisy: compare ratios, not\n\
         absolute numbers, across runs.\n\n\
         Goals: met? is checked by the run against each goal's bound; n.a. where part of the goal is\n\
         not one a program can check.\n\n{}\n",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        data::TENANTS,
        data::SEED,
        tables(rows),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(part: &'static str, goal: &str, checks: Vec<Check>) -> Numbered {
        Numbered {
            number: 2,
            row: Row {
                part,
                label: "Miss".into(),
                ours: "p50 6.6 ms".into(),
                floor: "3.8 ms".into(),
                ratio: "1.73×".into(),
                goal: goal.into(),
                checks,
                how: "pgbench".into(),
            },
        }
    }

    #[test]
    fn the_goal_table_has_a_line_per_row_with_a_goal_and_says_whether_it_was_met() {
        let rows = [
            row("", "≤ 1.5×", vec![Check::new(Goal::AtMost(1.5), 1.73, "1.73×")]),
            row("b", "(context)", Vec::new()),
            row(
                "c",
                "≥ 99 % / ≤ 40 %",
                vec![
                    Check::new(Goal::AtLeast(99.0), 99.04, "HIT 99.04 %"),
                    Check::new(Goal::AtMost(40.0), 34.3, "warms 34.30 %"),
                ],
            ),
            row("d", "resident well inside 256 MB", Vec::new()),
        ];
        assert_eq!(
            goals(&rows),
            "| figure | goal | latest result | met? |\n|---|---|---|---|\n\
             | 2. Miss | ≤ 1.5× | 1.73× | no |\n\
             | 2c. Miss | ≥ 99 % / ≤ 40 % | HIT 99.04 %; warms 34.30 % | yes |\n\
             | 2d. Miss | resident well inside 256 MB | p50 6.6 ms | n.a. |\n"
        );
    }

    #[test]
    fn fewer_is_strictly_fewer() {
        assert!(Goal::Below(1.0).met_by(0.7));
        assert!(!Goal::Below(1.0).met_by(1.0));
        assert!(Goal::AtMost(1.0).met_by(1.0));
        assert!(Goal::Exactly(1.0).met_by(1.0) && !Goal::Exactly(1.0).met_by(2.0));
    }
}
