//! Completion indexes of Indexed Jobs: the compressed interval lists of
//! `status.completedIndexes` / `failedIndexes` and success-policy rules
//! ("1,3-5,7"), and the index a pod carries in its annotation.

use k8s_openapi::api::core::v1::Pod;

/// The annotation (and label) holding a pod's completion index.
pub(crate) const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// How many counted failures an index has had (backoffLimitPerIndex).
pub(crate) const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// How many failures of an index a pod failure policy ignored.
pub(crate) const INDEX_IGNORED_FAILURE_COUNT: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";

/// Sorted, disjoint, non-adjacent closed intervals of indexes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Intervals(pub Vec<(i64, i64)>);

impl Intervals {
    /// Parses "1,3-5" keeping indexes below `completions`; malformed
    /// pieces are skipped, as Kubernetes does.
    pub(crate) fn parse(s: &str, completions: i64) -> Intervals {
        let mut out = Intervals::default();
        if s.is_empty() {
            return out;
        }
        for piece in s.split(',') {
            let mut ends = piece.splitn(2, '-');
            let Some(Ok(first)) = ends.next().map(str::parse::<i64>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match ends.next() {
                Some(l) => match l.parse::<i64>() {
                    Ok(l) => l.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            out.push(first, last);
        }
        out
    }

    fn push(&mut self, first: i64, last: i64) {
        match self.0.last_mut() {
            Some(l) if first <= l.1 + 1 => l.1 = l.1.max(last),
            _ => self.0.push((first, last)),
        }
    }

    /// These intervals with `more` (any order) added.
    pub(crate) fn with(&self, more: impl IntoIterator<Item = i64>) -> Intervals {
        let mut all: Vec<(i64, i64)> = self.0.clone();
        all.extend(more.into_iter().map(|i| (i, i)));
        all.sort();
        let mut out = Intervals::default();
        for (a, b) in all {
            out.push(a, b);
        }
        out
    }

    /// The union with `other`.
    pub(crate) fn merge(&self, other: &Intervals) -> Intervals {
        let mut all = self.0.clone();
        all.extend(other.0.iter().copied());
        all.sort();
        let mut out = Intervals::default();
        for (a, b) in all {
            out.push(a, b);
        }
        out
    }

    pub(crate) fn total(&self) -> i64 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    pub(crate) fn has(&self, i: i64) -> bool {
        self.0.iter().any(|&(a, b)| a <= i && i <= b)
    }

    /// How many of `other`'s indexes are in these.
    pub(crate) fn overlap(&self, other: &Intervals) -> i64 {
        let mut n = 0;
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                let (lo, hi) = (a.max(c), b.min(d));
                if lo <= hi {
                    n += hi - lo + 1;
                }
            }
        }
        n
    }

    /// The first `count` indexes below `completions` not in these.
    pub(crate) fn first_missing(&self, count: usize, completions: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut candidate = 0;
        for &(a, b) in &self.0 {
            while candidate < completions && out.len() < count && candidate < a {
                out.push(candidate);
                candidate += 1;
            }
            candidate = candidate.max(b + 1);
        }
        while candidate < completions && out.len() < count {
            out.push(candidate);
            candidate += 1;
        }
        out
    }
}

impl std::fmt::Display for Intervals {
    /// Kubernetes' form: two adjacent indexes are written "3,4", longer
    /// runs "3-7".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, &(a, b)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
            if b == a + 1 {
                write!(f, ",{b}")?;
            } else if b > a {
                write!(f, "-{b}")?;
            }
        }
        Ok(())
    }
}

fn annotation<'a>(p: &'a Pod, key: &str) -> Option<&'a String> {
    p.metadata.annotations.as_ref().and_then(|a| a.get(key))
}

/// The pod's completion index, if it has a valid one.
pub(crate) fn completion_index(p: &Pod) -> Option<i64> {
    annotation(p, COMPLETION_INDEX)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|i| *i >= 0)
}

fn count_annotation(p: &Pod, key: &str) -> i32 {
    annotation(p, key)
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (0..=i64::from(i32::MAX)).contains(v))
        .map_or(0, |v| v as i32)
}

/// The index's counted failures before this pod.
pub(crate) fn failure_count(p: &Pod) -> i32 {
    count_annotation(p, INDEX_FAILURE_COUNT)
}

/// The index's ignored failures before this pod.
pub(crate) fn ignored_failure_count(p: &Pod) -> i32 {
    count_annotation(p, INDEX_IGNORED_FAILURE_COUNT)
}

/// The generateName of an Indexed Job's pods: `<job>-<index>-`, the job
/// name shortened so that a generated name stays within 63 characters.
pub(crate) fn generate_name(job: &str, index: i64) -> String {
    let suffix = format!("-{index}-");
    let room = 58usize.saturating_sub(suffix.len());
    let mut name: String = job.chars().take(room).collect();
    name.push_str(&suffix);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_and_print_as_kubernetes() {
        let i = Intervals::parse("0,2-4,6,7", 10);
        assert_eq!(i.0, vec![(0, 0), (2, 4), (6, 7)]);
        assert_eq!(i.to_string(), "0,2-4,6,7");
        assert_eq!(i.total(), 6);
        assert_eq!(Intervals::parse("1-9", 5).to_string(), "1-4");
        assert_eq!(Intervals::parse("x,3", 5).to_string(), "3");
        let j = i.with([1, 5, 9]);
        assert_eq!(j.to_string(), "0-7,9");
        assert_eq!(Intervals::default().with([3, 4]).to_string(), "3,4");
        assert!(j.has(9) && !j.has(8));
    }

    #[test]
    fn first_missing_skips_what_is_taken() {
        let i = Intervals::parse("0,2-3", 10);
        assert_eq!(i.first_missing(3, 10), vec![1, 4, 5]);
        assert_eq!(i.first_missing(3, 2), vec![1]);
        assert_eq!(Intervals::default().first_missing(2, 5), vec![0, 1]);
    }

    #[test]
    fn overlap_counts_shared_indexes() {
        let a = Intervals::parse("0-4,8", 10);
        let b = Intervals::parse("3-8", 10);
        assert_eq!(a.overlap(&b), 3);
    }

    #[test]
    fn generated_names_stay_short() {
        assert_eq!(generate_name("pi", 3), "pi-3-");
        assert!(generate_name(&"a".repeat(80), 12345).len() <= 58);
    }
}
