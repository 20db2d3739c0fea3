//! Dashboard sessions and one-time login codes, kept in this API server
//! process's memory.
//!
//! A session id is 256 random bits; the maps are keyed by the SHA-256 of
//! the id (or code), so what is kept in memory cannot be sent back as a
//! cookie. A session lasts [`SESSION_LIFETIME`] at most, less when its
//! credential ends first: a bearer token is authenticated again on every
//! request (a deleted service-account token ends the session), a client
//! certificate's session ends at its `notAfter`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use parking_lot::Mutex;

use crate::authn::{TokenAuthenticator, UserInfo};

/// The longest a session lasts.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How long a one-time code may be used.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// The most sessions kept at once; a new one beyond them replaces the
/// oldest.
pub(crate) const MAX_SESSIONS: usize = 10_000;

/// The most unused codes kept at once.
pub(crate) const MAX_CODES: usize = 1_000;

/// What proves a session's identity while it lasts.
#[derive(Clone)]
pub(crate) enum Credential {
    /// A bearer token, authenticated again on every use.
    Token(String),
    /// An identity proven once (a client certificate and its key), valid
    /// until the session's end.
    Proven,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Token(_) => f.write_str("Token(..)"),
            Credential::Proven => f.write_str("Proven"),
        }
    }
}

/// An identity a login established: who, by what, until when.
#[derive(Clone, Debug)]
pub(crate) struct Login {
    pub(crate) user: UserInfo,
    pub(crate) credential: Credential,
    /// When the credential ends (a certificate's `notAfter`), if known.
    pub(crate) not_after: Option<SystemTime>,
}

impl Login {
    /// The user, if the credential still authenticates (a token is asked
    /// again: its user may be gone).
    fn current_user(&self, tokens: &TokenAuthenticator) -> Option<UserInfo> {
        match &self.credential {
            Credential::Token(t) => tokens.authenticate(&format!("Bearer {t}")),
            Credential::Proven => Some(self.user.clone()),
        }
    }
}

/// A live session, as a request sees it.
#[derive(Clone, Debug)]
pub(crate) struct Live {
    pub(crate) user: UserInfo,
    pub(crate) csrf: String,
}

struct Session {
    login: Login,
    csrf: String,
    created: SystemTime,
    expires: SystemTime,
}

struct Code {
    login: Login,
    expires: SystemTime,
}

/// 256 random bits, base64url without padding (43 characters).
pub(crate) fn random_id() -> Option<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The key a secret is kept under: its SHA-256.
fn key(secret: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Whether `a` and `b` are equal, in a time that does not depend on where
/// they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The sessions and codes of one API server.
#[derive(Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    codes: Mutex<HashMap<[u8; 32], Code>>,
}

impl Sessions {
    /// Starts a session for `login`: its id (the cookie's value) and its
    /// CSRF token. `None` if no random bytes could be had.
    pub(crate) fn create(&self, login: Login) -> Option<(String, Live)> {
        let id = random_id()?;
        let csrf = random_id()?;
        let now = SystemTime::now();
        let mut expires = now + SESSION_LIFETIME;
        if let Some(end) = login.not_after {
            expires = expires.min(end);
        }
        let live = Live {
            user: login.user.clone(),
            csrf: csrf.clone(),
        };
        let mut sessions = self.sessions.lock();
        if sessions.len() >= MAX_SESSIONS {
            sessions.retain(|_, s| s.expires > now);
        }
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                sessions.remove(&k);
            }
        }
        sessions.insert(
            key(&id),
            Session {
                login,
                csrf,
                created: now,
                expires,
            },
        );
        Some((id, live))
    }

    /// The live session of cookie value `id`: `None` if there is none, it
    /// has expired, or its credential no longer authenticates (then it is
    /// ended).
    pub(crate) fn get(&self, id: &str, tokens: &TokenAuthenticator) -> Option<Live> {
        let k = key(id);
        let (login, csrf) = {
            let mut sessions = self.sessions.lock();
            let s = sessions.get(&k)?;
            if s.expires <= SystemTime::now() {
                sessions.remove(&k);
                return None;
            }
            (s.login.clone(), s.csrf.clone())
        };
        // A token is checked outside the lock (a service-account token is
        // looked up in the watch cache).
        match login.current_user(tokens) {
            Some(user) => Some(Live { user, csrf }),
            None => {
                self.sessions.lock().remove(&k);
                None
            }
        }
    }

    /// Ends the session of cookie value `id`; whether there was one.
    pub(crate) fn remove(&self, id: &str) -> bool {
        self.sessions.lock().remove(&key(id)).is_some()
    }

    /// How many sessions are kept (expired ones included until swept).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sessions.lock().len()
    }

    /// A one-time code for `login`, valid for [`CODE_LIFETIME`] (or until
    /// its credential ends): the code and when it expires.
    pub(crate) fn create_code(&self, login: Login) -> Option<(String, SystemTime)> {
        let code = random_id()?;
        let now = SystemTime::now();
        let mut expires = now + CODE_LIFETIME;
        if let Some(end) = login.not_after {
            expires = expires.min(end);
        }
        let mut codes = self.codes.lock();
        codes.retain(|_, c| c.expires > now);
        if codes.len() >= MAX_CODES {
            let first = codes.iter().min_by_key(|(_, c)| c.expires).map(|(k, _)| *k);
            if let Some(k) = first {
                codes.remove(&k);
            }
        }
        codes.insert(key(&code), Code { login, expires });
        Some((code, expires))
    }

    /// The login of an unused, unexpired `code`, which is then used up.
    pub(crate) fn take_code(&self, code: &str) -> Option<Login> {
        let c = self.codes.lock().remove(&key(code))?;
        (c.expires > SystemTime::now()).then_some(c.login)
    }

    /// Makes `code` expire now (tests of expiry).
    #[cfg(test)]
    pub(crate) fn expire_code(&self, code: &str) {
        if let Some(c) = self.codes.lock().get_mut(&key(code)) {
            c.expires = SystemTime::UNIX_EPOCH;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn tokens() -> TokenAuthenticator {
        let mut t = TokenAuthenticator::default();
        t.add("tok", UserInfo::authenticated("jane", ["dev"]));
        t
    }

    fn proven(not_after: Option<SystemTime>) -> Login {
        Login {
            user: UserInfo::authenticated("cert-user", ["ops"]),
            credential: Credential::Proven,
            not_after,
        }
    }

    #[test]
    fn ids_are_256_random_bits() {
        let a = random_id().unwrap();
        let b = random_id().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a)
            .unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn a_session_lives_until_removed() {
        let s = Sessions::default();
        let t = tokens();
        let (id, live) = s.create(proven(None)).unwrap();
        assert_eq!(live.user.name, "cert-user");
        let again = s.get(&id, &t).unwrap();
        assert_eq!(again.csrf, live.csrf);
        assert!(s.get("other", &t).is_none());
        assert!(s.remove(&id));
        assert!(s.get(&id, &t).is_none());
        assert!(!s.remove(&id));
    }

    #[test]
    fn a_session_ends_with_its_certificate() {
        let s = Sessions::default();
        let past = SystemTime::now() - Duration::from_secs(1);
        let (id, _) = s.create(proven(Some(past))).unwrap();
        assert!(s.get(&id, &tokens()).is_none());
        assert_eq!(s.len(), 0, "removed once seen expired");
    }

    #[test]
    fn a_token_session_ends_when_the_token_no_longer_authenticates() {
        let s = Sessions::default();
        let login = Login {
            user: UserInfo::authenticated("jane", ["dev"]),
            credential: Credential::Token("tok".into()),
            not_after: None,
        };
        let (id, _) = s.create(login).unwrap();
        assert_eq!(s.get(&id, &tokens()).unwrap().user.name, "jane");
        // The token is gone (a deleted service account's).
        assert!(s.get(&id, &TokenAuthenticator::default()).is_none());
        assert!(s.get(&id, &tokens()).is_none(), "the session ended");
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let (first, _) = s.create(proven(None)).unwrap();
        for _ in 0..MAX_SESSIONS {
            s.create(proven(None)).unwrap();
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert!(s.get(&first, &tokens()).is_none(), "the oldest made room");
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let s = Sessions::default();
        let (code, expires) = s.create_code(proven(None)).unwrap();
        assert!(expires <= SystemTime::now() + CODE_LIFETIME);
        assert_eq!(s.take_code(&code).unwrap().user.name, "cert-user");
        assert!(s.take_code(&code).is_none(), "used up");
        let (code, _) = s.create_code(proven(None)).unwrap();
        s.expire_code(&code);
        assert!(s.take_code(&code).is_none(), "expired");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
