//! What an operator sees of the queues: Kubernetes' debug tables
//! (`/debug/api_priority_and_fairness/dump_priority_levels` and
//! `dump_queues`, comma-separated cells aligned as Go's tabwriter aligns
//! them) and the `apiserver_flowcontrol_*` metrics.

use std::fmt::Write;

use super::filter::Apf;

/// The debug paths.
pub(crate) const DUMP_PRIORITY_LEVELS: &str =
    "/debug/api_priority_and_fairness/dump_priority_levels";
/// The per-queue table.
pub(crate) const DUMP_QUEUES: &str = "/debug/api_priority_and_fairness/dump_queues";

/// Go's `tabwriter.NewWriter(w, 8, 0, 1, ' ', 0)` over rows whose every
/// cell ends in a tab: each column as wide as its widest cell plus one
/// space, at least 8.
fn tabulate(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count() + 1)
                .max()
                .unwrap_or(0)
                .max(8)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            let _ = write!(out, "{cell:<width$}");
        }
        out.push('\n');
    }
    out
}

/// Kubernetes' `row`: each cell followed by a comma.
fn row<I: IntoIterator<Item = String>>(cells: I) -> Vec<String> {
    cells.into_iter().map(|c| format!("{c},")).collect()
}

/// Kubernetes' `SeatSeconds` text: seconds with 8 decimals and `ss`.
fn seat_seconds(v: f64) -> String {
    format!("{:.8}ss", v.max(0.0))
}

impl Apf {
    /// The debug table at `path`, if it is one.
    pub(crate) fn debug_dump(&self, path: &str) -> Option<String> {
        match path {
            DUMP_PRIORITY_LEVELS => Some(self.dump_priority_levels()),
            DUMP_QUEUES => Some(self.dump_queues()),
            _ => None,
        }
    }

    fn dump_priority_levels(&self) -> String {
        let config = self.source.config();
        let mut rows = vec![row([
            "PriorityLevelName",
            "ActiveQueues",
            "IsIdle",
            "IsQuiescing",
            "WaitingRequests",
            "ExecutingRequests",
            "DispatchedRequests",
            "RejectedRequests",
            "TimedoutRequests",
            "CancelledRequests",
        ]
        .map(String::from))];
        for (name, level) in &config.levels {
            let d = level.queues.dump();
            let active = d.queues.iter().filter(|q| q.waiting > 0).count();
            rows.push(row([
                name.clone(),
                active.to_string(),
                (d.waiting == 0 && d.executing == 0).to_string(),
                "false".to_string(),
                d.waiting.to_string(),
                d.executing.to_string(),
                d.dispatched.to_string(),
                d.rejected.to_string(),
                d.timed_out.to_string(),
                d.cancelled.to_string(),
            ]));
        }
        tabulate(&rows)
    }

    fn dump_queues(&self) -> String {
        let config = self.source.config();
        let mut rows = vec![row([
            "PriorityLevelName",
            "Index",
            "PendingRequests",
            "ExecutingRequests",
            "SeatsInUse",
            "NextDispatchR",
            "InitialSeatsSum",
            "MaxSeatsSum",
            "TotalWorkSum",
        ]
        .map(String::from))];
        for (name, level) in &config.levels {
            for (i, q) in level.queues.dump().queues.iter().enumerate() {
                rows.push(row([
                    name.clone(),
                    i.to_string(),
                    q.waiting.to_string(),
                    q.executing.to_string(),
                    q.seats_in_use.to_string(),
                    seat_seconds(q.next_dispatch_r),
                    q.waiting_seats.to_string(),
                    q.waiting_seats.to_string(),
                    seat_seconds(q.waiting_seats as f64 * 0.003),
                ]));
            }
        }
        tabulate(&rows)
    }

    /// The `apiserver_flowcontrol_*` metrics, in the text exposition.
    pub(crate) fn metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP apiserver_flowcontrol_rejected_requests_total [BETA] Number of requests rejected by API Priority and Fairness subsystem");
        let _ = writeln!(
            out,
            "# TYPE apiserver_flowcontrol_rejected_requests_total counter"
        );
        for ((fs, pl, reason), n) in self.rejected.lock().iter() {
            let _ = writeln!(out, "apiserver_flowcontrol_rejected_requests_total{{flow_schema=\"{fs}\",priority_level=\"{pl}\",reason=\"{reason}\"}} {n}");
        }
        let config = self.source.config();
        let mut gauges: Vec<(String, String, usize, usize)> = Vec::new();
        for (pl, level) in &config.levels {
            for (fs, waiting, executing) in level.queues.dump().by_flow_schema {
                gauges.push((fs, pl.clone(), waiting, executing));
            }
        }
        gauges.sort();
        let _ = writeln!(out, "# HELP apiserver_flowcontrol_current_inqueue_requests [BETA] Number of requests currently pending in queues of the API Priority and Fairness subsystem");
        let _ = writeln!(
            out,
            "# TYPE apiserver_flowcontrol_current_inqueue_requests gauge"
        );
        for (fs, pl, waiting, _) in &gauges {
            let _ = writeln!(out, "apiserver_flowcontrol_current_inqueue_requests{{flow_schema=\"{fs}\",priority_level=\"{pl}\"}} {waiting}");
        }
        let _ = writeln!(out, "# HELP apiserver_flowcontrol_current_executing_requests [BETA] Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem");
        let _ = writeln!(
            out,
            "# TYPE apiserver_flowcontrol_current_executing_requests gauge"
        );
        for (fs, pl, _, executing) in &gauges {
            let _ = writeln!(out, "apiserver_flowcontrol_current_executing_requests{{flow_schema=\"{fs}\",priority_level=\"{pl}\"}} {executing}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_as_tabwriter_does() {
        let rows = vec![
            row(["PriorityLevelName", "IsIdle"].map(String::from)),
            row(["exempt", "true"].map(String::from)),
        ];
        assert_eq!(
            tabulate(&rows),
            "PriorityLevelName, IsIdle, \nexempt,            true,   \n"
        );
        assert_eq!(seat_seconds(0.0), "0.00000000ss");
        assert_eq!(seat_seconds(1.5), "1.50000000ss");
    }
}
