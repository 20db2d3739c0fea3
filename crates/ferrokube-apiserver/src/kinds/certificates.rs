//! `certificates.k8s.io/v1` CertificateSigningRequest as Kubernetes' strategy
//! and validation treat it: the requesting user is recorded on create (and
//! whatever the body said about the requester is dropped), status starts
//! empty; writes to the object change neither spec nor status, `/status`
//! sets the certificate (keeping the approval conditions), `/approval` sets
//! the conditions (keeping the certificate); conditions get their
//! timestamps; the request must be a signed PKCS#10 PEM block.

use base64::Engine;
use ferrokube_api::status::FieldError;
use ferrokube_api::validation::{is_dns1123_label, is_dns1123_subdomain};
use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

use super::meta::{array, text};
use crate::authn::UserInfo;

/// The signer name v1 refuses on new objects.
const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";

/// Every key usage Kubernetes knows.
const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// Records who asks, and starts with an empty status.
pub(crate) fn prepare_create(obj: &mut Value, user: Option<&UserInfo>) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        for k in ["username", "uid", "groups", "extra"] {
            spec.remove(k);
        }
        if let Some(u) = user {
            spec.insert("username".into(), json!(u.name));
            if !u.uid.is_empty() {
                spec.insert("uid".into(), json!(u.uid));
            }
            if !u.groups.is_empty() {
                spec.insert("groups".into(), json!(u.groups));
            }
        }
    }
    if let Some(o) = obj.as_object_mut() {
        o.insert("status".into(), json!({}));
    }
}

/// What an update through `subresource` may change: nothing of spec, and
/// of status only the certificate (`status`) or the conditions
/// (`approval`). The generic handling has already taken status alone from
/// a subresource write, and kept the stored status on a main one.
pub(crate) fn prepare_update(old: &Value, new: &mut Value, subresource: &str) {
    match old.get("spec") {
        Some(s) => new["spec"] = s.clone(),
        None => {
            if let Some(o) = new.as_object_mut() {
                o.remove("spec");
            }
        }
    }
    match subresource {
        "status" => {
            // The approval conditions stay as stored, instance for instance.
            for t in ["Approved", "Denied"] {
                let old_at = indices(old, t);
                let new_at = indices(new, t);
                if old_at.len() == new_at.len() {
                    for (o, n) in old_at.into_iter().zip(new_at) {
                        new["status"]["conditions"][n] = old["status"]["conditions"][o].clone();
                    }
                }
            }
            stamp_conditions(old, new);
        }
        "approval" => {
            stamp_conditions(old, new);
            let status = new.get_mut("status").and_then(Value::as_object_mut);
            if let Some(status) = status {
                match old.pointer("/status/certificate") {
                    Some(c) => {
                        status.insert("certificate".into(), c.clone());
                    }
                    None => {
                        status.remove("certificate");
                    }
                }
            }
        }
        "" => match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        },
        _ => {}
    }
}

fn indices(csr: &Value, t: &str) -> Vec<usize> {
    array(csr, "/status/conditions")
        .iter()
        .enumerate()
        .filter(|(_, c)| text(c, "/type") == t)
        .map(|(i, _)| i)
        .collect()
}

/// Conditions without times get now, or (for the transition) the time of
/// the stored condition of the same type and status.
fn stamp_conditions(old: &Value, new: &mut Value) {
    let now = crate::objectmeta::now_rfc3339();
    let old_conditions = array(old, "/status/conditions").to_vec();
    let Some(list) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in list {
        let Some(c) = c.as_object_mut() else {
            continue;
        };
        let unset = |c: &serde_json::Map<String, Value>, k: &str| {
            c.get(k).and_then(Value::as_str).is_none_or(str::is_empty)
        };
        if unset(c, "lastUpdateTime") {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if unset(c, "lastTransitionTime") {
            let same = old_conditions.iter().find(|o| {
                o.get("type") == c.get("type")
                    && o.get("status") == c.get("status")
                    && !text(o, "/lastTransitionTime").is_empty()
            });
            let at = same
                .map(|o| text(o, "/lastTransitionTime").to_string())
                .unwrap_or_else(|| now.clone());
            c.insert("lastTransitionTime".into(), json!(at));
        }
    }
}

/// A byte string as Go's `%#v` shows it.
fn go_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "[]byte(nil)".to_string(),
        Some(b) => format!(
            "[]byte{{{}}}",
            b.iter()
                .map(|x| format!("0x{x:x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn decoded(v: &Value, ptr: &str) -> Option<Vec<u8>> {
    let s = v.pointer(ptr)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Parses the request (PEM `CERTIFICATE REQUEST`) and checks its signature.
fn check_request(pem: &[u8]) -> Result<(), String> {
    let not_request = || "PEM block type must be CERTIFICATE REQUEST".to_string();
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| not_request())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(not_request());
    }
    let (_, req) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    req.verify_signature().map_err(|_| {
        let alg = req
            .certification_request_info
            .subject_pki
            .algorithm
            .algorithm
            .to_id_string();
        if alg == "1.2.840.10045.2.1" {
            "x509: ECDSA verification failure".to_string()
        } else {
            "crypto/rsa: verification error".to_string()
        }
    })
}

/// `validateCertificate`: PEM CERTIFICATE blocks only, at least one.
fn check_certificate(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let mut blocks = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let Ok(block) = block else {
            break;
        };
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        x509_parser::parse_x509_certificate(&block.contents)
            .map_err(|e| format!("x509: malformed certificate: {e}"))?;
        blocks += 1;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// `ValidateSignerName`.
fn signer_name(name: &str, errs: &mut Vec<FieldError>) {
    const F: &str = "spec.signerName";
    if name.is_empty() {
        errs.push(FieldError::required(F, ""));
        return;
    }
    let parts: Vec<&str> = name.split('/').collect();
    let [domain, path] = parts[..] else {
        errs.push(FieldError::invalid(
            F,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return;
    };
    if domain.len() > 253 {
        errs.push(FieldError::too_long(F, 253));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    for l in &labels {
        let msgs = is_dns1123_label(l);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(FieldError::invalid(
                    F,
                    domain,
                    format!("validating label {l:?}: {m}"),
                ));
            }
            break;
        }
    }
    if labels.len() < 2 {
        errs.push(FieldError::invalid(
            F,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for c in path.split('.') {
        let msgs = is_dns1123_subdomain(c);
        if !msgs.is_empty() {
            for m in msgs {
                errs.push(FieldError::invalid(
                    F,
                    path,
                    format!("validating component {c:?}: {m}"),
                ));
            }
            break;
        }
    }
    let max = 253 + (253 + 63 + 1) + 1;
    if name.len() > max {
        errs.push(FieldError::too_long(F, max));
    }
}

fn has_duplicates(v: &[&str]) -> bool {
    v.iter().enumerate().any(|(i, x)| v[..i].contains(x))
}

fn condition_types(csr: &Value) -> Vec<&str> {
    array(csr, "/status/conditions")
        .iter()
        .map(|c| text(c, "/type"))
        .collect()
}

fn usages(csr: &Value) -> Vec<&str> {
    array(csr, "/spec/usages")
        .iter()
        .map(|u| u.as_str().unwrap_or(""))
        .collect()
}

/// What the stored CSR of an update already has and so may keep, though a
/// create may not (Kubernetes' `certificateValidationOptions`).
struct Allowances {
    /// Both Approved and Denied conditions.
    both: bool,
    /// The legacy `kubernetes.io/legacy-unknown` signer.
    legacy: bool,
    /// Conditions of the same type twice.
    duplicate_types: bool,
    /// A condition without a type.
    empty_type: bool,
    /// Usages Kubernetes does not know.
    unknown_usages: bool,
    /// A usage twice.
    duplicate_usages: bool,
    /// A certificate that does not parse (unchanged, or the old one was bad).
    arbitrary_cert: bool,
}

impl Allowances {
    fn of(old: Option<&Value>, new_cert: &[u8], old_cert: &[u8]) -> Allowances {
        let old_types = old.map(condition_types).unwrap_or_default();
        let old_usages = old.map(usages).unwrap_or_default();
        Allowances {
            both: old_types.contains(&"Approved") && old_types.contains(&"Denied"),
            legacy: old.is_some_and(|o| text(o, "/spec/signerName") == LEGACY_UNKNOWN),
            duplicate_types: has_duplicates(&old_types),
            empty_type: old_types.contains(&""),
            unknown_usages: old_usages.iter().any(|u| !USAGES.contains(u)),
            duplicate_usages: has_duplicates(&old_usages),
            arbitrary_cert: old
                .is_some_and(|_| new_cert == old_cert || check_certificate(old_cert).is_err()),
        }
    }
}

/// The errors of `spec.usages`: none, unknown or repeated ones.
fn check_usages(csr: &Value, allow: &Allowances, errs: &mut Vec<FieldError>) {
    let us = usages(csr);
    if us.is_empty() {
        errs.push(FieldError::required("spec.usages", ""));
    }
    if !allow.unknown_usages {
        let mut supported: Vec<&str> = USAGES.to_vec();
        supported.sort();
        for (i, u) in us.iter().enumerate() {
            if !USAGES.contains(u) {
                errs.push(FieldError::not_supported(
                    format!("spec.usages[{i}]"),
                    *u,
                    &supported,
                ));
            }
        }
    }
    if !allow.duplicate_usages {
        for (i, u) in us.iter().enumerate() {
            if us[..i].contains(u) {
                errs.push(FieldError::duplicate(format!("spec.usages[{i}]"), *u));
            }
        }
    }
}

/// The errors of `status.conditions`: types, statuses, Approved with
/// Denied, types repeated.
fn check_conditions(csr: &Value, allow: &Allowances, errs: &mut Vec<FieldError>) {
    let (mut approved, mut denied) = (false, false);
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in array(csr, "/status/conditions").iter().enumerate() {
        let t = text(c, "/type");
        if !allow.empty_type && t.is_empty() {
            errs.push(FieldError::required(
                format!("status.conditions[{i}].type"),
                "",
            ));
        }
        let status = text(c, "/status");
        let allowed: &[&str] = if matches!(t, "Approved" | "Denied" | "Failed") {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if status.is_empty() {
            errs.push(FieldError::required(
                format!("status.conditions[{i}].status"),
                "",
            ));
        } else if !allowed.contains(&status) {
            errs.push(FieldError::not_supported(
                format!("status.conditions[{i}].status"),
                status,
                allowed,
            ));
        }
        if !allow.both {
            let clash = match t {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if clash {
                errs.push(FieldError::invalid(
                    "status.conditions",
                    t,
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !allow.duplicate_types {
            if seen.contains(&t) {
                errs.push(FieldError::duplicate(
                    format!("status.conditions[{i}].type"),
                    t,
                ));
            }
            seen.push(t);
        }
    }
}

/// What an update of `old` may not do: remove conditions, add or modify
/// Approved/Denied except through `approval`, set the certificate except
/// through `status`, or change one already issued.
fn check_update(
    csr: &Value,
    old: &Value,
    subresource: &str,
    (new_cert, old_cert): (&[u8], &[u8]),
    errs: &mut Vec<FieldError>,
) {
    let of_type = |csr: &Value, t: &str| -> Vec<Value> {
        array(csr, "/status/conditions")
            .iter()
            .filter(|c| text(c, "/type") == t)
            .cloned()
            .collect()
    };
    for t in ["Approved", "Denied", "Failed"] {
        if of_type(csr, t).len() < of_type(old, t).len() {
            errs.push(FieldError::forbidden(
                "status.conditions",
                format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    if subresource != "approval" {
        for t in ["Approved", "Denied"] {
            let (was, is) = (of_type(old, t), of_type(csr, t));
            if is.len() > was.len() {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not add a condition of type {t:?}"),
                ));
            } else if is.len() == was.len() && is != was {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not modify a condition of type {t:?}"),
                ));
            }
        }
    }
    if new_cert != old_cert {
        if subresource != "status" {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if !old_cert.is_empty() {
            errs.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
}

/// The errors of a CSR; `old` is the stored one on update, `subresource`
/// the path written (`status` may set the certificate, `approval` the
/// Approved and Denied conditions).
pub(crate) fn validate(csr: &Value, old: Option<&Value>, subresource: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let new_cert = decoded(csr, "/status/certificate").unwrap_or_default();
    let old_cert = old
        .and_then(|o| decoded(o, "/status/certificate"))
        .unwrap_or_default();
    let allow = Allowances::of(old, &new_cert, &old_cert);

    let request = decoded(csr, "/spec/request");
    if let Err(e) = check_request(request.as_deref().unwrap_or(&[])) {
        errs.push(FieldError::invalid_shown(
            "spec.request",
            go_bytes(request.as_deref()),
            e,
        ));
    }
    check_usages(csr, &allow, &mut errs);
    let signer = text(csr, "/spec/signerName");
    if !allow.legacy && signer == LEGACY_UNKNOWN {
        errs.push(FieldError::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        signer_name(signer, &mut errs);
    }
    if let Some(secs) = csr
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        if secs < 600 {
            errs.push(FieldError::invalid(
                "spec.expirationSeconds",
                secs,
                "may not specify a duration less than 600 seconds (10 minutes)",
            ));
        }
    }
    check_conditions(csr, &allow, &mut errs);
    if !allow.arbitrary_cert {
        if let Err(e) = check_certificate(&new_cert) {
            errs.push(FieldError::invalid(
                "status.certificate",
                "<certificate data>",
                e,
            ));
        }
    }
    if let Some(old) = old {
        check_update(csr, old, subresource, (&new_cert, &old_cert), &mut errs);
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_pem(cn: &str) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr(pem: &str) -> Value {
        json!({"metadata": {"name": "alice"}, "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"]}})
    }

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn a_signed_request_is_valid_and_records_its_requester() {
        let mut c = csr(&request_pem("alice"));
        c["spec"]["username"] = json!("mallory");
        c["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
        let user = UserInfo::authenticated("alice", ["devs"]);
        prepare_create(&mut c, Some(&user));
        assert_eq!(c["spec"]["username"], "alice");
        assert_eq!(c["spec"]["groups"], json!(["devs", "system:authenticated"]));
        assert_eq!(c["status"], json!({}));
        assert!(
            validate(&c, None, "").is_empty(),
            "{:?}",
            validate(&c, None, "")
        );
    }

    #[test]
    fn bad_requests_are_refused_with_kubernetes_messages() {
        let mut c = csr("not a pem");
        c["spec"]["usages"] = json!(["client auth", "flying", "client auth"]);
        c["spec"]["signerName"] = json!("example");
        c["spec"]["expirationSeconds"] = json!(60);
        let errs = messages(validate(&c, None, ""));
        assert!(
            errs[0].starts_with("spec.request: Invalid value: []byte{0x6e, 0x6f"),
            "{}",
            errs[0]
        );
        assert!(errs[0].ends_with(": PEM block type must be CERTIFICATE REQUEST"));
        assert!(errs[1].starts_with("spec.usages[1]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\""));
        assert_eq!(errs[2], "spec.usages[2]: Duplicate value: \"client auth\"");
        assert_eq!(errs[3], "spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'");
        assert_eq!(errs[4], "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)");
    }

    #[test]
    fn approval_and_status_change_only_their_part() {
        let old = csr(&request_pem("alice"));
        // Approval: conditions only, stamped.
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}],
            "certificate": "Zm9v"});
        prepare_update(&old, &mut new, "approval");
        assert!(new.pointer("/status/certificate").is_none());
        assert!(!text(&new, "/status/conditions/0/lastUpdateTime").is_empty());
        assert!(validate(&new, Some(&old), "approval").is_empty());
        // The same through the object itself is refused...
        assert_eq!(
            messages(validate(&new, Some(&old), "")),
            ["status.conditions: Forbidden: updates may not add a condition of type \"Approved\""]
        );
        // ... and both verdicts at once too.
        let mut both = new.clone();
        both["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Denied", "status": "True"}));
        assert_eq!(
            messages(validate(&both, Some(&old), "approval")),
            ["status.conditions: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"]
        );
        // Status keeps the approval as stored and takes a certificate.
        let approved = new;
        let mut status = approved.clone();
        status["status"]["conditions"][0]["reason"] = json!("Forged");
        status["status"]["certificate"] = json!("Zm9v");
        prepare_update(&approved, &mut status, "status");
        assert_eq!(
            status["status"]["conditions"][0]["reason"],
            "KubectlApprove"
        );
        assert_eq!(
            messages(validate(&status, Some(&approved), "status")),
            ["status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"]
        );
        // Removing the approval is refused.
        let mut removed = approved.clone();
        removed["status"] = json!({});
        assert_eq!(
            messages(validate(&removed, Some(&approved), "approval")),
            ["status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""]
        );
    }
}
