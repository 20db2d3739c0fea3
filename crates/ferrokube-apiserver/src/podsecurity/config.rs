//! The cluster's Pod Security defaults and exemptions, read from the
//! `PodSecurity` plugin's entry of an `--admission-control-config-file`
//! (an `AdmissionConfiguration`, YAML or JSON), whose configuration is a
//! `PodSecurityConfiguration` given inline or by `path`:
//!
//! ```yaml
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: AdmissionConfiguration
//! plugins:
//! - name: PodSecurity
//!   configuration:
//!     apiVersion: pod-security.admission.config.k8s.io/v1
//!     kind: PodSecurityConfiguration
//!     defaults: {enforce: baseline, enforce-version: latest}
//!     exemptions: {usernames: [], runtimeClasses: [], namespaces: [kube-system]}
//! ```
//!
//! Unset defaults are `privileged` at `latest`, as in Kubernetes.

use std::path::Path;

use anyhow::{bail, Context};
use serde_json::Value;

use super::api::{Level, LevelVersion, Policy, Version};

/// What the PodSecurity plugin is configured with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Config {
    /// The policy of namespaces without labels (and of modes they do not
    /// label).
    pub defaults: Policy,
    /// Requests by these users are not checked.
    pub exempt_usernames: Vec<String>,
    /// Pods of these runtime classes are not checked.
    pub exempt_runtime_classes: Vec<String>,
    /// Requests in these namespaces are not checked.
    pub exempt_namespaces: Vec<String>,
}

const ADMISSION_API_VERSIONS: &[&str] =
    &["apiserver.config.k8s.io/v1", "apiserver.k8s.io/v1alpha1"];
const POD_SECURITY_API_VERSIONS: &[&str] = &[
    "pod-security.admission.config.k8s.io/v1",
    "pod-security.admission.config.k8s.io/v1beta1",
    "pod-security.admission.config.k8s.io/v1alpha1",
];

fn parse_document(text: &str, what: &Path) -> anyhow::Result<Value> {
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("reading {}", what.display()))
}

impl Config {
    /// The configuration in the admission configuration file `path`; the
    /// defaults when it has no `PodSecurity` plugin.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the admission configuration {}", path.display()))?;
        let doc = parse_document(&text, path)?;
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = doc
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "AdmissionConfiguration" || !ADMISSION_API_VERSIONS.contains(&api_version) {
            bail!(
                "{}: expected an AdmissionConfiguration of apiserver.config.k8s.io/v1, got kind {kind:?} of {api_version:?}",
                path.display()
            );
        }
        let plugin = doc
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("PodSecurity"));
        let Some(plugin) = plugin else {
            return Ok(Config::default());
        };
        let configuration = match (plugin.get("configuration"), plugin.get("path")) {
            (Some(c), _) if !c.is_null() => c.clone(),
            (_, Some(Value::String(p))) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(p);
                let text = std::fs::read_to_string(&p).with_context(|| {
                    format!("reading the PodSecurity configuration {}", p.display())
                })?;
                parse_document(&text, &p)?
            }
            _ => return Ok(Config::default()),
        };
        Config::from_pod_security_configuration(&configuration)
            .with_context(|| format!("{}: PodSecurity", path.display()))
    }

    /// A `PodSecurityConfiguration` object, checked as Kubernetes checks it.
    pub(crate) fn from_pod_security_configuration(c: &Value) -> anyhow::Result<Config> {
        let kind = c.get("kind").and_then(Value::as_str).unwrap_or_default();
        let api_version = c
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind != "PodSecurityConfiguration" || !POD_SECURITY_API_VERSIONS.contains(&api_version) {
            bail!("expected a PodSecurityConfiguration of pod-security.admission.config.k8s.io/v1, got kind {kind:?} of {api_version:?}");
        }
        let mut errors = Vec::new();
        let defaults = c.get("defaults").cloned().unwrap_or(Value::Null);
        let mut mode = |name: &str| -> LevelVersion {
            let mut lv = LevelVersion::PRIVILEGED_LATEST;
            match defaults.get(name).and_then(Value::as_str) {
                None | Some("") => {}
                Some(l) => match Level::parse(l) {
                    Ok(level) => lv.level = level,
                    Err(e) => errors.push(format!("defaults.{name}: Invalid value: {l:?}: {e}")),
                },
            }
            let vkey = format!("{name}-version");
            match defaults.get(&vkey).and_then(Value::as_str) {
                None | Some("") => {}
                Some(v) => match Version::parse(v) {
                    Ok(version) => lv.version = version,
                    Err(e) => errors.push(format!("defaults.{vkey}: Invalid value: {v:?}: {e}")),
                },
            }
            lv
        };
        let defaults = Policy {
            enforce: mode("enforce"),
            audit: mode("audit"),
            warn: mode("warn"),
        };
        let exemptions = c.get("exemptions").cloned().unwrap_or(Value::Null);
        let mut list = |name: &str| -> Vec<String> {
            let items: Vec<String> = exemptions
                .get(name)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect();
            for (i, item) in items.iter().enumerate() {
                if item.is_empty() {
                    errors.push(format!(
                        "exemptions.{name}[{i}]: Invalid value: \"\": must be non-empty"
                    ));
                } else if items[..i].contains(item) {
                    errors.push(format!("exemptions.{name}[{i}]: Duplicate value: {item:?}"));
                }
            }
            items
        };
        let config = Config {
            defaults,
            exempt_usernames: list("usernames"),
            exempt_runtime_classes: list("runtimeClasses"),
            exempt_namespaces: list("namespaces"),
        };
        if !errors.is_empty() {
            bail!("{}", errors.join(", "));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_configuration_with_inline_pod_security() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admission.yaml");
        std::fs::write(
            &path,
            r#"
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: Other
  configuration: {}
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: "baseline"
      enforce-version: "latest"
      warn: restricted
      warn-version: v1.25
    exemptions:
      usernames: ["ci-bot"]
      runtimeClasses: []
      namespaces: [kube-system, trusted]
"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.defaults.enforce.to_string(), "baseline:latest");
        assert_eq!(c.defaults.audit.to_string(), "privileged:latest");
        assert_eq!(c.defaults.warn.to_string(), "restricted:v1.25");
        assert_eq!(c.exempt_usernames, ["ci-bot"]);
        assert_eq!(c.exempt_namespaces, ["kube-system", "trusted"]);
        assert!(c.exempt_runtime_classes.is_empty());
    }

    #[test]
    fn a_configuration_by_path_and_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("podsecurity.json"),
            r#"{"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
                "defaults": {"audit": "restricted"}}"#,
        )
        .unwrap();
        let path = dir.path().join("admission.json");
        std::fs::write(
            &path,
            r#"{"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
                "plugins": [{"name": "PodSecurity", "path": "podsecurity.json"}]}"#,
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        assert_eq!(c.defaults.audit.level, Level::Restricted);
        assert_eq!(c.defaults.enforce, LevelVersion::PRIVILEGED_LATEST);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let bad = serde_json::json!({"apiVersion": "pod-security.admission.config.k8s.io/v1",
            "kind": "PodSecurityConfiguration",
            "defaults": {"enforce": "strict", "warn-version": "1.2"},
            "exemptions": {"namespaces": ["a", "", "a"]}});
        let e = Config::from_pod_security_configuration(&bad)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "defaults.enforce: Invalid value: \"strict\": must be one of privileged, baseline, restricted, defaults.warn-version: Invalid value: \"1.2\": must be \"latest\" or \"v1.x\", exemptions.namespaces[1]: Invalid value: \"\": must be non-empty, exemptions.namespaces[2]: Duplicate value: \"a\""
        );
        let wrong_kind = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(Config::from_pod_security_configuration(&wrong_kind).is_err());
    }
}
