//! Authentication: who a request comes from. A client certificate signed by
//! the cluster CA names the user (CN) and groups (O); a bearer token is
//! looked up among the tokens the server knows. The result travels with the
//! request as [`UserInfo`], for authorization to read later.

use std::collections::HashMap;

/// The authenticated user of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The user of a client certificate's subject.
    pub fn from_cert_der(der: &[u8]) -> Option<UserInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_string))
            .collect();
        groups.push("system:authenticated".into());
        Some(UserInfo { name, groups })
    }
}

/// Bearer tokens the server accepts, and whose they are.
#[derive(Clone, Debug, Default)]
pub struct TokenAuthenticator {
    tokens: HashMap<String, UserInfo>,
}

impl TokenAuthenticator {
    pub fn add(&mut self, token: &str, user: UserInfo) {
        self.tokens.insert(token.to_string(), user);
    }

    /// The user of an `Authorization` header value, if it is a known bearer
    /// token.
    pub fn authenticate(&self, authorization: &str) -> Option<UserInfo> {
        let (scheme, token) = authorization.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        self.tokens.get(token.trim()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let mut t = TokenAuthenticator::default();
        let admin = UserInfo {
            name: "system:admin".into(),
            groups: vec!["system:masters".into()],
        };
        t.add("s3cret", admin.clone());
        assert_eq!(t.authenticate("Bearer s3cret"), Some(admin));
        assert_eq!(
            t.authenticate("bearer s3cret").map(|u| u.name),
            Some("system:admin".into())
        );
        assert_eq!(t.authenticate("Bearer wrong"), None);
        assert_eq!(t.authenticate("Basic s3cret"), None);
        assert_eq!(t.authenticate("s3cret"), None);
    }
}
