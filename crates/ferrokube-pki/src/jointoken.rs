//! The join token: what an agent needs to join a cluster from nothing but
//! the server's address. `K10<sha256 of the CA PEM>::server:<secret>`: the
//! hash lets the agent trust the CA it fetches from `/cacerts` before it
//! trusts anything else, and the secret authenticates it.

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A join token for the CA `ca_pem` and `secret`.
pub fn format(ca_pem: &str, secret: &str) -> String {
    format!("K10{}::server:{secret}", sha256_hex(ca_pem.as_bytes()))
}

/// The CA hash and the secret of a join token, or None when it is not one.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.trim().strip_prefix("K10")?;
    let (hash, secret) = rest.split_once("::")?;
    let secret = secret.strip_prefix("server:").unwrap_or(secret);
    let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !secret.is_empty()).then_some((hash, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = format("-----BEGIN CERTIFICATE-----\n", "s3cret");
        let (hash, secret) = parse(&t).expect("parses");
        assert_eq!(hash, sha256_hex(b"-----BEGIN CERTIFICATE-----\n"));
        assert_eq!(secret, "s3cret");
        assert_eq!(parse("K10abc::server:x"), None);
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse(&format!("K10{}::server:", "a".repeat(64))), None);
    }
}
