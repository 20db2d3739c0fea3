//! Query parameters of API requests, read and checked the way Kubernetes
//! reads them: list and watch options, write options (dryRun, fieldManager,
//! fieldValidation) and delete options. A malformed value is an error message
//! that becomes a 400 BadRequest; unknown parameters are ignored, as
//! Kubernetes ignores them.

use std::collections::HashMap;

use ferrokube_api::status::ApiError;

/// How a list's resourceVersion is to be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RvMatch {
    /// Unset.
    Unset,
    NotOlderThan,
    Exact,
}

/// The options of a list or watch (`metav1.ListOptions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListOptions {
    pub(crate) label_selector: String,
    pub(crate) field_selector: String,
    pub(crate) watch: bool,
    pub(crate) allow_watch_bookmarks: bool,
    /// `None`: unset ("most recent", a consistent read).
    pub(crate) resource_version: Option<String>,
    pub(crate) resource_version_match: RvMatch,
    pub(crate) timeout_seconds: Option<u64>,
    pub(crate) limit: usize,
    pub(crate) continue_token: Option<String>,
    pub(crate) send_initial_events: Option<bool>,
}

/// Options of create, update and patch.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub(crate) dry_run: bool,
    /// The `fieldManager` query parameter, when the client gave one (server-side
    /// apply requires it).
    pub field_manager: Option<String>,
    /// `Strict`, `Warn` or `Ignore` (default `Warn`, as Kubernetes; kubectl
    /// sends `Strict`).
    pub(crate) field_validation: FieldValidation,
    /// Server-side apply: take ownership of conflicting fields.
    pub(crate) force: bool,
    /// Warnings for the client (`Warning` headers), gathered while the
    /// request is served.
    pub(crate) warnings: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
    /// Who is writing, for managedFields: `fieldManager`, else the client's
    /// User-Agent up to its first `/`.
    pub manager: String,
    /// For server-side apply: the applied configuration.
    pub(crate) apply_config: Option<std::sync::Arc<serde_json::Value>>,
    /// Who writes, when the handler knows (CertificateSigningRequests
    /// record their requester).
    pub(crate) user: Option<crate::authn::UserInfo>,
    /// The subresource a write to the object itself came through (`scale`),
    /// which its `managedFields` entry names.
    pub(crate) via: &'static str,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// `propagationPolicy` of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Propagation {
    Orphan,
    Background,
    Foreground,
}

/// Options of a delete (from the query and/or a `DeleteOptions` body).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub(crate) dry_run: bool,
    pub(crate) grace_period_seconds: Option<i64>,
    pub(crate) propagation: Option<Propagation>,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) precondition_resource_version: Option<String>,
    /// Who deletes, when the handler knows (for admission webhooks).
    pub(crate) user: Option<crate::authn::UserInfo>,
}

/// The decoded query string: parameter → values, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Query(map)
    }

    /// The first value of a parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// All values of a parameter.
    pub(crate) fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    fn bool(&self, name: &str) -> Result<Option<bool>, QueryError> {
        match self.get(name) {
            None => Ok(None),
            // Kubernetes' query decoder takes "" as true for flags like ?watch.
            Some("") | Some("true") | Some("1") | Some("True") => Ok(Some(true)),
            Some("false") | Some("0") | Some("False") => Ok(Some(false)),
            Some(other) => Err(QueryError::NotBoolean {
                name: name.to_string(),
                value: other.to_string(),
            }),
        }
    }

    fn int<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, QueryError> {
        match self.get(name) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| QueryError::NotInteger {
                name: name.to_string(),
                value: v.to_string(),
            }),
        }
    }

    /// The options of a list or watch, refused in Kubernetes' words when
    /// malformed or combined as Kubernetes forbids.
    pub(crate) fn list_options(&self) -> Result<ListOptions, QueryError> {
        let resource_version_match = match self.get("resourceVersionMatch") {
            None | Some("") => RvMatch::Unset,
            Some("NotOlderThan") => RvMatch::NotOlderThan,
            Some("Exact") => RvMatch::Exact,
            Some(other) => {
                return Err(QueryError::Unsupported {
                    name: "resourceVersionMatch",
                    value: other.to_string(),
                    supported: "\"Exact\", \"NotOlderThan\"",
                })
            }
        };
        let limit: Option<i64> = self.int("limit")?;
        let opts = ListOptions {
            label_selector: self.get("labelSelector").unwrap_or_default().to_string(),
            field_selector: self.get("fieldSelector").unwrap_or_default().to_string(),
            watch: self.bool("watch")?.unwrap_or(false),
            allow_watch_bookmarks: self.bool("allowWatchBookmarks")?.unwrap_or(false),
            resource_version: self
                .get("resourceVersion")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            resource_version_match,
            timeout_seconds: self.int("timeoutSeconds")?,
            limit: limit.unwrap_or(0).max(0) as usize,
            continue_token: self
                .get("continue")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            send_initial_events: self.bool("sendInitialEvents")?,
        };
        if let Some(rv) = &opts.resource_version {
            parse_resource_version(rv)?;
        }
        if opts.send_initial_events.is_some() {
            if opts.resource_version_match != RvMatch::NotOlderThan {
                return Err(QueryError::Forbidden("resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"));
            }
        } else if opts.resource_version_match != RvMatch::Unset && opts.resource_version.is_none() {
            return Err(QueryError::Forbidden(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if opts.continue_token.is_some()
            && opts.resource_version.as_deref().is_some_and(|rv| rv != "0")
        {
            return Err(QueryError::Forbidden(
                "specifying resource version is not allowed when using continue",
            ));
        }
        if opts.resource_version_match == RvMatch::Exact
            && opts.resource_version.as_deref() == Some("0")
        {
            return Err(QueryError::Forbidden(
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        if opts.send_initial_events.is_some() && !opts.watch {
            return Err(QueryError::Forbidden(
                "sendInitialEvents is forbidden for list",
            ));
        }
        Ok(opts)
    }

    /// The options of a create, update or patch (`manager` and `user` left
    /// for the handler to fill).
    pub(crate) fn write_options(&self) -> Result<WriteOptions, QueryError> {
        let dry_run = self.dry_run()?;
        let field_validation = match self.get("fieldValidation") {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(QueryError::Unsupported {
                    name: "fieldValidation",
                    value: other.to_string(),
                    supported: "\"Ignore\", \"Strict\", \"Warn\"",
                })
            }
        };
        let field_manager = self
            .get("fieldManager")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if let Some(m) = &field_manager {
            if m.len() > 128 || m.chars().any(|c| c.is_control()) {
                return Err(QueryError::FieldManager);
            }
        }
        Ok(WriteOptions {
            dry_run,
            field_manager,
            field_validation,
            force: self.bool("force")?.unwrap_or(false),
            warnings: Default::default(),
            manager: String::new(),
            apply_config: None,
            user: None,
            via: "",
        })
    }

    /// `dryRun` may only be `All`.
    pub(crate) fn dry_run(&self) -> Result<bool, QueryError> {
        match self.all("dryRun") {
            [] => Ok(false),
            values if values.iter().all(|v| v == "All") => Ok(true),
            values => Err(QueryError::Unsupported {
                name: "dryRun",
                value: values
                    .iter()
                    .find(|v| *v != "All")
                    .cloned()
                    .unwrap_or_default(),
                supported: "\"All\"",
            }),
        }
    }

    /// The options of a delete from the query (a body may add to them).
    pub(crate) fn delete_options(&self) -> Result<DeleteOptions, QueryError> {
        Ok(DeleteOptions {
            dry_run: self.dry_run()?,
            grace_period_seconds: self.int("gracePeriodSeconds")?,
            propagation: match self.get("propagationPolicy") {
                None | Some("") => None,
                Some(p) => Some(parse_propagation(p)?),
            },
            precondition_uid: None,
            precondition_resource_version: None,
            user: None,
        })
    }
}

/// Reads a `propagationPolicy` value.
pub(crate) fn parse_propagation(p: &str) -> Result<Propagation, QueryError> {
    match p {
        "Orphan" => Ok(Propagation::Orphan),
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        other => Err(QueryError::Unsupported {
            name: "propagationPolicy",
            value: other.to_string(),
            supported: "\"Foreground\", \"Background\", \"Orphan\"",
        }),
    }
}

/// A resourceVersion as the store's revision.
pub(crate) fn parse_resource_version(rv: &str) -> Result<i64, QueryError> {
    match rv.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(QueryError::ResourceVersion(rv.to_string())),
    }
}

/// A query parameter Kubernetes refuses; each is a 400 Bad Request with
/// Kubernetes' message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// A flag (`watch`, `allowWatchBookmarks`, `force`, ...) that is not a
    /// boolean.
    #[error("invalid value for {name}: {value:?} is not a boolean")]
    NotBoolean { name: String, value: String },
    /// A count (`limit`, `timeoutSeconds`, `gracePeriodSeconds`) that is
    /// not an integer.
    #[error("invalid value for {name}: {value:?} is not an integer")]
    NotInteger { name: String, value: String },
    /// A value outside the parameter's enumeration (`resourceVersionMatch`,
    /// `fieldValidation`, `dryRun`, `propagationPolicy`).
    #[error("{name}: Unsupported value: {value:?}: supported values: {supported}")]
    Unsupported {
        name: &'static str,
        value: String,
        supported: &'static str,
    },
    /// A resourceVersion that is not a non-negative integer.
    #[error("invalid resource version: {0:?}")]
    ResourceVersion(String),
    /// List parameters combined as Kubernetes forbids (the message says how).
    #[error("{0}")]
    Forbidden(&'static str),
    /// A `fieldManager` too long or not printable.
    #[error("fieldManager: Invalid value: must be at most 128 printable characters")]
    FieldManager,
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_options() {
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb%2Ctier%20in%20(a)&fieldSelector=spec.nodeName%3Dn1&limit=500&watch=1&allowWatchBookmarks=true&timeoutSeconds=30&resourceVersion=17",
        ));
        let o = q.list_options().unwrap();
        assert_eq!(o.label_selector, "app=web,tier in (a)");
        assert_eq!(o.field_selector, "spec.nodeName=n1");
        assert_eq!(o.limit, 500);
        assert!(o.watch && o.allow_watch_bookmarks);
        assert_eq!(o.timeout_seconds, Some(30));
        assert_eq!(o.resource_version.as_deref(), Some("17"));
        assert_eq!(o.resource_version_match, RvMatch::Unset);
        let o = Query::parse(None).list_options().unwrap();
        assert_eq!(
            (o.limit, o.watch, o.resource_version.clone()),
            (0, false, None)
        );
    }

    #[test]
    fn bad_list_options_are_errors() {
        for q in [
            "limit=abc",
            "watch=maybe",
            "resourceVersion=-3",
            "resourceVersion=abc",
            "resourceVersionMatch=Exact",
            "resourceVersionMatch=Newest&resourceVersion=1",
            "resourceVersion=5&continue=abc",
            "resourceVersion=0&resourceVersionMatch=Exact",
            "sendInitialEvents=true",
            "watch=1&sendInitialEvents=true",
        ] {
            assert!(Query::parse(Some(q)).list_options().is_err(), "{q}");
        }
    }

    #[test]
    fn write_and_delete_options() {
        let w = Query::parse(Some(
            "dryRun=All&fieldManager=kubectl-client-side-apply&fieldValidation=Warn",
        ))
        .write_options()
        .unwrap();
        assert!(w.dry_run);
        assert_eq!(
            w.field_manager.as_deref(),
            Some("kubectl-client-side-apply")
        );
        assert_eq!(w.field_validation, FieldValidation::Warn);
        assert_eq!(
            Query::parse(None).write_options().unwrap().field_validation,
            FieldValidation::Warn
        );
        assert!(Query::parse(Some("dryRun=Some")).write_options().is_err());
        assert!(Query::parse(Some("fieldValidation=Loose"))
            .write_options()
            .is_err());
        let d = Query::parse(Some("propagationPolicy=Foreground&gracePeriodSeconds=0"))
            .delete_options()
            .unwrap();
        assert_eq!(d.propagation, Some(Propagation::Foreground));
        assert_eq!(d.grace_period_seconds, Some(0));
        assert!(Query::parse(Some("propagationPolicy=Later"))
            .delete_options()
            .is_err());
    }
}
