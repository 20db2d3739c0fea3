//! Kubernetes' CEL URL library: `url(string)` (an absolute URI or an
//! absolute path, as Go's `url.ParseRequestURI` takes it) and its getters
//! `getScheme`, `getHost`, `getHostname`, `getPort`, `getEscapedPath`,
//! `getQuery`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ::cel::extractors::This;
use ::cel::objects::Opaque;
use ::cel::{Context, ExecutionError, Value};

/// A parsed URL.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    text: String,
    scheme: String,
    host: String,
    path: String,
    query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        "net.URL"
    }

    fn json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.text.clone()))
    }
}

fn parse(s: &str) -> Option<Url> {
    if s.is_empty() {
        return None;
    }
    let (rest, _fragment) = s.split_once('#').unwrap_or((s, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if rest.starts_with('/') {
        return Some(Url {
            text: s.into(),
            scheme: String::new(),
            host: String::new(),
            path: rest.into(),
            query: query.into(),
        });
    }
    let (scheme, after) = rest.split_once(':')?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let (host, path) = match after.strip_prefix("//") {
        Some(auth) => {
            let end = auth.find('/').unwrap_or(auth.len());
            let authority = &auth[..end];
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            (host.to_string(), auth[end..].to_string())
        }
        None => (String::new(), after.to_string()),
    };
    Some(Url {
        text: s.into(),
        scheme: scheme.into(),
        host,
        path,
        query: query.into(),
    })
}

fn err(function: &str, message: &str) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

fn with_url<T>(
    function: &str,
    v: &Arc<dyn Opaque>,
    f: impl FnOnce(&Url) -> T,
) -> Result<T, ExecutionError> {
    v.downcast_ref::<Url>()
        .map(f)
        .ok_or_else(|| err(function, "expected a URL"))
}

fn url(s: Arc<String>) -> Result<Arc<dyn Opaque>, ExecutionError> {
    parse(&s)
        .map(|u| Arc::new(u) as Arc<dyn Opaque>)
        .ok_or_else(|| err("url", &format!("URL parse error during conversion from string: parse {s:?}: invalid URI for request")))
}

/// The host without its port, IPv6 brackets removed.
fn hostname(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h).to_string();
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h).to_string()
}

fn port(host: &str) -> String {
    let after_brackets = host.rsplit_once(']').map_or(host, |(_, p)| p);
    after_brackets
        .rsplit_once(':')
        .map_or(String::new(), |(_, p)| p.to_string())
}

fn escape_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Query unescaping: `+` is a space, `%XX` a byte.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn get_scheme(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<String>, ExecutionError> {
    with_url("getScheme", &v, |u| Arc::new(u.scheme.clone()))
}

fn get_host(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<String>, ExecutionError> {
    with_url("getHost", &v, |u| Arc::new(u.host.clone()))
}

fn get_hostname(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<String>, ExecutionError> {
    with_url("getHostname", &v, |u| Arc::new(hostname(&u.host)))
}

fn get_port(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<String>, ExecutionError> {
    with_url("getPort", &v, |u| Arc::new(port(&u.host)))
}

fn get_escaped_path(This(v): This<Arc<dyn Opaque>>) -> Result<Arc<String>, ExecutionError> {
    with_url("getEscapedPath", &v, |u| Arc::new(escape_path(&u.path)))
}

fn get_query(This(v): This<Arc<dyn Opaque>>) -> Result<Value, ExecutionError> {
    with_url("getQuery", &v, |u| {
        let mut params: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for pair in u.query.split(['&', ';']).filter(|p| !p.is_empty()) {
            let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
            params
                .entry(unescape(k))
                .or_default()
                .push(Value::String(Arc::new(unescape(val))));
        }
        crate::cel::map_value(
            params
                .into_iter()
                .map(|(k, vs)| (k, Value::List(Arc::new(vs))))
                .collect(),
        )
    })
}

/// Adds the library's functions to `ctx`.
pub(crate) fn add_to(ctx: &mut Context<'_, '_>) -> Result<(), ::cel::DeclarationError> {
    ctx.add_function("url", url)?;
    ctx.add_function("getScheme", get_scheme)?;
    ctx.add_function("getHost", get_host)?;
    ctx.add_function("getHostname", get_hostname)?;
    ctx.add_function("getPort", get_port)?;
    ctx.add_function("getEscapedPath", get_escaped_path)?;
    ctx.add_function("getQuery", get_query)?;
    Ok(())
}
