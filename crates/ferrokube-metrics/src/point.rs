//! What one scrape says of a node or a container (a cumulative CPU counter,
//! the working set and swap at a timestamp, and when it started), and the
//! usage two such points give: metrics-server's `MetricsPoint` and
//! `resourceUsage` (`pkg/storage/types.go`).

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// One measurement of a node or a container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Point {
    /// When the container started (`container_start_time_seconds`); 0 when
    /// not reported (nodes).
    pub start_time: Nanos,
    /// When it was measured (the series' timestamp, else the scrape's time).
    pub timestamp: Nanos,
    /// CPU used since the start, in nanocore-seconds.
    pub cpu: u64,
    /// The working set, in bytes.
    pub memory: u64,
    /// Swap in use, in bytes.
    pub swap: u64,
}

/// Usage over a window: what NodeMetrics and PodMetrics report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU in nanocores (the rate between the two points).
    pub cpu: u64,
    /// The latest working set, in bytes.
    pub memory: u64,
    /// The latest swap use, in bytes.
    pub swap: u64,
}

/// When a usage was measured and over how long.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeInfo {
    /// The later point's timestamp.
    pub timestamp: Nanos,
    /// Between the two points.
    pub window: Nanos,
}

/// Why two points give no usage (metrics-server logs and skips these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The later point started before the earlier one.
    StartTimeDecreased,
    /// The counter went back.
    CpuDecreased,
}

/// The usage between `prev` and `last`, as metrics-server computes it: the
/// CPU rate truncated to whole nanocores, the later point's memory and
/// swap, and its timestamp with the window between them.
pub(crate) fn resource_usage(last: &Point, prev: &Point) -> Result<(Usage, TimeInfo), Unusable> {
    if last.start_time < prev.start_time {
        return Err(Unusable::StartTimeDecreased);
    }
    if last.cpu < prev.cpu {
        return Err(Unusable::CpuDecreased);
    }
    let window = last.timestamp - prev.timestamp;
    let seconds = window as f64 / 1e9;
    // Go converts the float to uint64; the storage never keeps two points
    // with one timestamp, so the window is not 0.
    let cpu = ((last.cpu - prev.cpu) as f64 / seconds) as u64;
    Ok((
        Usage {
            cpu,
            memory: last.memory,
            swap: last.swap,
        },
        TimeInfo {
            timestamp: last.timestamp,
            window,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn cpu_is_the_rate_between_two_counters_and_memory_the_latest() {
        let prev = Point {
            timestamp: 100 * S,
            cpu: 10 * S as u64,
            memory: 1,
            ..Point::default()
        };
        let last = Point {
            timestamp: 115 * S,
            cpu: 10 * S as u64 + 3_750_000_000,
            memory: 4096,
            swap: 7,
            ..Point::default()
        };
        let (u, t) = resource_usage(&last, &prev).unwrap();
        assert_eq!(u.cpu, 250_000_000);
        assert_eq!((u.memory, u.swap), (4096, 7));
        assert_eq!(
            t,
            TimeInfo {
                timestamp: 115 * S,
                window: 15 * S
            }
        );
    }

    #[test]
    fn a_counter_going_back_or_an_earlier_start_gives_nothing() {
        let prev = Point {
            start_time: 5,
            timestamp: 10,
            cpu: 100,
            ..Point::default()
        };
        let back = Point {
            start_time: 5,
            timestamp: 20,
            cpu: 99,
            ..Point::default()
        };
        assert_eq!(resource_usage(&back, &prev), Err(Unusable::CpuDecreased));
        let earlier = Point {
            start_time: 4,
            timestamp: 20,
            cpu: 200,
            ..Point::default()
        };
        assert_eq!(
            resource_usage(&earlier, &prev),
            Err(Unusable::StartTimeDecreased)
        );
    }
}
