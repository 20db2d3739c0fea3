//! The words of Pod Security: levels (`privileged`, `baseline`,
//! `restricted`), policy versions (`latest` or `v1.X`), and the policy a
//! namespace's `pod-security.kubernetes.io/*` labels ask for, read as
//! Kubernetes reads them (a bad label is an error, and stands for the
//! strictest enforce level and the loosest audit and warn levels).

use std::collections::BTreeMap;
use std::fmt;

use ferrokube_api::status::FieldError;

pub(crate) const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub(crate) const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub(crate) const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
pub(crate) const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub(crate) const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
pub(crate) const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// How strict a policy is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// A level's name, or the message Kubernetes gives for anything else.
    pub(crate) fn parse(s: &str) -> Result<Level, ParseError> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err(ParseError::Level),
        }
    }
}

/// A level or version Pod Security does not know, in Kubernetes' words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseError {
    /// A level other than `privileged`, `baseline` or `restricted`.
    #[error("must be one of privileged, baseline, restricted")]
    Level,
    /// A version other than `latest` or `v1.<minor>`.
    #[error("must be \"latest\" or \"v1.x\"")]
    Version,
}

/// A policy version: `latest`, or the checks as they were in `v1.X`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Version {
    Latest,
    /// `v1.<minor>`.
    Minor(u32),
}

impl Version {
    /// `latest` or `v1.X` (no leading zero, no sign), or Kubernetes' message.
    pub(crate) fn parse(s: &str) -> Result<Version, ParseError> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let minor = s.strip_prefix("v1.").ok_or(ParseError::Version)?;
        let digits_only = !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || (minor.len() > 1 && minor.starts_with('0')) {
            return Err(ParseError::Version);
        }
        minor
            .parse()
            .map(Version::Minor)
            .map_err(|_| ParseError::Version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(m) => write!(f, "v1.{m}"),
        }
    }
}

/// A level at a version, written `restricted:latest`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LevelVersion {
    pub level: Level,
    pub version: Version,
}

impl LevelVersion {
    pub(crate) const PRIVILEGED_LATEST: LevelVersion = LevelVersion {
        level: Level::Privileged,
        version: Version::Latest,
    };
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// What a namespace enforces, audits and warns about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    pub enforce: LevelVersion,
    pub audit: LevelVersion,
    pub warn: LevelVersion,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            enforce: LevelVersion::PRIVILEGED_LATEST,
            audit: LevelVersion::PRIVILEGED_LATEST,
            warn: LevelVersion::PRIVILEGED_LATEST,
        }
    }
}

impl Policy {
    /// Nothing enforced, audited or warned about.
    pub(crate) fn fully_privileged(&self) -> bool {
        [self.enforce, self.audit, self.warn]
            .iter()
            .all(|lv| lv.level == Level::Privileged)
    }

    /// The same checks in every mode (versions of privileged levels do
    /// not matter).
    pub(crate) fn equivalent(&self, other: &Policy) -> bool {
        let same = |a: LevelVersion, b: LevelVersion| {
            a.level == b.level && (a.level == Level::Privileged || a.version == b.version)
        };
        same(self.enforce, other.enforce)
            && same(self.audit, other.audit)
            && same(self.warn, other.warn)
    }
}

/// The policy of a namespace with `labels`, `defaults` filling what they
/// leave out, and the errors of the labels that do not parse (each at
/// `metadata.labels[<label>]`). A bad enforce level enforces `restricted`;
/// a bad audit or warn level audits or warns about nothing; a bad version
/// is `latest`.
pub(crate) fn policy_to_evaluate(
    labels: &BTreeMap<String, String>,
    defaults: &Policy,
) -> (Policy, Vec<FieldError>) {
    let mut p = *defaults;
    let mut errs = Vec::new();
    let mut level = |label: &str, slot: &mut Level, on_error: Level| {
        if let Some(v) = labels.get(label) {
            match Level::parse(v) {
                Ok(l) => *slot = l,
                Err(e) => {
                    *slot = on_error;
                    errs.push(FieldError::invalid(
                        format!("metadata.labels[{label}]"),
                        v.as_str(),
                        e.to_string(),
                    ));
                }
            }
        }
    };
    level(ENFORCE_LEVEL_LABEL, &mut p.enforce.level, Level::Restricted);
    level(AUDIT_LEVEL_LABEL, &mut p.audit.level, Level::Privileged);
    level(WARN_LEVEL_LABEL, &mut p.warn.level, Level::Privileged);
    let mut version = |label: &str, slot: &mut Version| {
        if let Some(v) = labels.get(label) {
            match Version::parse(v) {
                Ok(parsed) => *slot = parsed,
                Err(e) => {
                    *slot = Version::Latest;
                    errs.push(FieldError::invalid(
                        format!("metadata.labels[{label}]"),
                        v.as_str(),
                        e.to_string(),
                    ));
                }
            }
        }
    };
    version(ENFORCE_VERSION_LABEL, &mut p.enforce.version);
    version(AUDIT_VERSION_LABEL, &mut p.audit.version);
    version(WARN_VERSION_LABEL, &mut p.warn.version);
    // A warn level left unset follows an enforce level set stricter (so
    // workloads are warned about what their pods would be refused for).
    let has = |label: &str| labels.contains_key(label);
    if !has(WARN_LEVEL_LABEL) && has(ENFORCE_LEVEL_LABEL) && p.enforce.level > p.warn.level {
        p.warn.level = p.enforce.level;
        if !has(WARN_VERSION_LABEL) {
            p.warn.version = p.enforce.version;
        }
    }
    // Kubernetes reports the errors label by label: enforce, its version,
    // audit, its version, warn, its version.
    let order = [
        ENFORCE_LEVEL_LABEL,
        ENFORCE_VERSION_LABEL,
        AUDIT_LEVEL_LABEL,
        AUDIT_VERSION_LABEL,
        WARN_LEVEL_LABEL,
        WARN_VERSION_LABEL,
    ];
    errs.sort_by_key(|e| {
        order
            .iter()
            .position(|l| e.field == format!("metadata.labels[{l}]"))
    });
    (p, errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn versions_parse_as_kubernetes_reads_them() {
        assert_eq!(Version::parse("latest"), Ok(Version::Latest));
        assert_eq!(Version::parse("v1.0"), Ok(Version::Minor(0)));
        assert_eq!(Version::parse("v1.25"), Ok(Version::Minor(25)));
        for bad in [
            "", "v1.", "v1.01", "v2.1", "1.25", "v1.x", "v1.-1", "Latest",
        ] {
            assert_eq!(Version::parse(bad), Err(ParseError::Version), "{bad}");
        }
        assert_eq!(Version::Minor(25).to_string(), "v1.25");
    }

    #[test]
    fn labels_make_the_policy_and_defaults_fill_the_rest() {
        let defaults = Policy {
            enforce: LevelVersion {
                level: Level::Baseline,
                version: Version::Minor(24),
            },
            ..Policy::default()
        };
        let (p, errs) = policy_to_evaluate(
            &labels(&[
                (WARN_LEVEL_LABEL, "restricted"),
                (WARN_VERSION_LABEL, "v1.25"),
            ]),
            &defaults,
        );
        assert!(errs.is_empty());
        assert_eq!(p.enforce.to_string(), "baseline:v1.24");
        assert_eq!(p.audit.to_string(), "privileged:latest");
        assert_eq!(p.warn.to_string(), "restricted:v1.25");
    }

    #[test]
    fn bad_labels_fail_closed_for_enforce_and_open_for_audit_and_warn() {
        let (p, errs) = policy_to_evaluate(
            &labels(&[
                (WARN_LEVEL_LABEL, "loose"),
                (ENFORCE_LEVEL_LABEL, "strict"),
                (AUDIT_VERSION_LABEL, "1.2"),
            ]),
            &Policy::default(),
        );
        assert_eq!(p.enforce.level, Level::Restricted);
        assert_eq!(p.warn.level, Level::Privileged);
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            shown,
            [
                "metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: \"strict\": must be one of privileged, baseline, restricted",
                "metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: \"1.2\": must be \"latest\" or \"v1.x\"",
                "metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: \"loose\": must be one of privileged, baseline, restricted",
            ]
        );
    }

    #[test]
    fn warn_follows_a_stricter_enforce_level_unless_labelled() {
        let (p, _) = policy_to_evaluate(
            &labels(&[
                (ENFORCE_LEVEL_LABEL, "restricted"),
                (ENFORCE_VERSION_LABEL, "v1.24"),
            ]),
            &Policy::default(),
        );
        assert_eq!(p.warn.to_string(), "restricted:v1.24");
        let (p, _) = policy_to_evaluate(
            &labels(&[
                (ENFORCE_LEVEL_LABEL, "restricted"),
                (WARN_LEVEL_LABEL, "baseline"),
            ]),
            &Policy::default(),
        );
        assert_eq!(p.warn.to_string(), "baseline:latest");
        let (p, _) = policy_to_evaluate(
            &labels(&[
                (ENFORCE_LEVEL_LABEL, "baseline"),
                (WARN_VERSION_LABEL, "v1.30"),
            ]),
            &Policy::default(),
        );
        assert_eq!(p.warn.to_string(), "baseline:v1.30");
    }

    #[test]
    fn equivalence_ignores_the_versions_of_privileged_levels() {
        let a = Policy::default();
        let mut b = a;
        b.audit.version = Version::Minor(3);
        assert!(a.equivalent(&b) && a.fully_privileged());
        b.audit.level = Level::Baseline;
        assert!(!a.equivalent(&b) && !b.fully_privileged());
    }
}
