//! String formats as the apiextensions-apiserver checks them: the formats
//! of its `supportedFormats` list, each as go-openapi's `strfmt` checks it;
//! any other format is stripped from the schema (no check at all), as
//! Kubernetes strips it.

use std::sync::OnceLock;

use base64::Engine as _;
use regex::Regex;

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

fn matches(cell: &'static OnceLock<Option<Regex>>, pattern: &str, s: &str) -> bool {
    re(cell, pattern).is_some_and(|r| r.is_match(s))
}

/// Whether `s` is valid for `format`; formats Kubernetes does not support
/// accept everything.
pub(crate) fn valid(format: &str, s: &str) -> bool {
    static UUID: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID3: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID4: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID5: OnceLock<Option<Regex>> = OnceLock::new();
    static HEX: OnceLock<Option<Regex>> = OnceLock::new();
    static RGB: OnceLock<Option<Regex>> = OnceLock::new();
    static SSN: OnceLock<Option<Regex>> = OnceLock::new();
    static BSON: OnceLock<Option<Regex>> = OnceLock::new();
    static EMAIL: OnceLock<Option<Regex>> = OnceLock::new();
    match format.replace('-', "").as_str() {
        "uuid" => matches(
            &UUID,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid3" => matches(
            &UUID3,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid4" => matches(
            &UUID4,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid5" => matches(
            &UUID5,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            s,
        ),
        "hexcolor" => matches(&HEX, r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", s),
        "rgbcolor" => matches(
            &RGB,
            r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$",
            s,
        ),
        "ssn" => matches(&SSN, r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", s),
        "bsonobjectid" => matches(&BSON, r"^[0-9a-fA-F]{24}$", s),
        "email" => matches(&EMAIL, r"^(?:[^<>@\s]+\s*<)?[^<>@\s]+@[^<>@\s]+>?$", s),
        "byte" => base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
        "password" => true,
        "date" => date(s),
        "datetime" => date_time(s),
        "duration" => duration(s),
        "ipv4" => s.contains('.') && ip(s),
        "ipv6" => s.contains(':') && ip(s),
        "cidr" => cidr(s),
        "mac" => mac(s),
        "hostname" => hostname(s),
        // strfmt: an absolute URI or path, or else a hostname.
        "uri" => uri(s) || hostname(s),
        "isbn" => isbn10(s) || isbn13(s),
        "isbn10" => isbn10(s),
        "isbn13" => isbn13(s),
        "creditcard" => credit_card(s),
        _ => true,
    }
}

/// `2006-01-02`: a real calendar date.
fn date(s: &str) -> bool {
    s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
}

/// strfmt's `IsDateTime`: a valid date, `T` (any case), then
/// `HH:MM:SS`, optional fraction, and `Z` or a `±HH:MM` offset.
fn date_time(s: &str) -> bool {
    static TIME: OnceLock<Option<Regex>> = OnceLock::new();
    let lower = s.to_lowercase();
    let mut parts = lower.split('t');
    let (Some(day), Some(time)) = (parts.next(), parts.next()) else {
        return false;
    };
    let pattern = r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$";
    let Some(caps) = re(&TIME, pattern).and_then(|r| r.captures(time)) else {
        return false;
    };
    let field = |i: usize| caps.get(i).map_or("99", |m| m.as_str());
    s.len() >= 4 && date(day) && field(1) <= "23" && field(2) <= "59" && field(3) <= "59"
}

/// Go's `time.ParseDuration` forms (`1h30m`, `1.5s`) or strfmt's own
/// (`3 days`, `1w`).
fn duration(s: &str) -> bool {
    static GO: OnceLock<Option<Regex>> = OnceLock::new();
    static WORDS: OnceLock<Option<Regex>> = OnceLock::new();
    matches(
        &GO,
        r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$",
        s,
    ) || s == "0"
        || matches(
            &WORDS,
            r"^[-+]?\d+\s*(ns|nanos?|nanoseconds?|us|µs|micros?|microseconds?|ms|millis?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)$",
            s,
        )
}

fn ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn cidr(s: &str) -> bool {
    let Some((addr, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets, `:`/`-` separated pairs or `.`
/// separated quads.
fn mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let octets_ok = |n: usize| n == 6 || n == 8 || n == 20;
    for sep in [':', '-'] {
        let parts: Vec<&str> = s.split(sep).collect();
        if parts.len() > 1 && octets_ok(parts.len()) && parts.iter().all(|p| hex(p, 2)) {
            return true;
        }
    }
    let quads: Vec<&str> = s.split('.').collect();
    quads.len() > 1 && octets_ok(quads.len() * 2) && quads.iter().all(|p| hex(p, 4))
}

/// strfmt's hostname: dot-separated labels of letters, digits, `-` and
/// `_`, at most 255 characters.
fn hostname(s: &str) -> bool {
    static HOST: OnceLock<Option<Regex>> = OnceLock::new();
    s.len() <= 255
        && matches(
            &HOST,
            r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
            s,
        )
}

/// Go's `url.ParseRequestURI`: an absolute URI or an absolute path.
fn uri(s: &str) -> bool {
    if s.is_empty() || s.contains([' ', '\t', '\n']) {
        return false;
    }
    if s.starts_with('/') {
        return true;
    }
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn digits_of(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, '-' | ' ')).collect()
}

fn isbn10(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 10 {
        return false;
    }
    let mut sum = 0;
    for (i, c) in d.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'X' if i == 9 => 10,
            _ => return false,
        };
        sum += (10 - i as u32) * v;
    }
    sum.is_multiple_of(11)
}

fn isbn13(s: &str) -> bool {
    let d = digits_of(s);
    if d.len() != 13 || !d.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = d
        .chars()
        .enumerate()
        .map(|(i, c)| (c as u32 - '0' as u32) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    sum.is_multiple_of(10)
}

fn credit_card(s: &str) -> bool {
    static CC: OnceLock<Option<Regex>> = OnceLock::new();
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    matches(
        &CC,
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11})$",
        &d,
    )
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn formats_accept_and_refuse_as_strfmt_does() {
        for (format, ok, bad) in [
            ("hostname", "example.com", "-bad-.com"),
            ("uri", "https://example.com/x", "not a uri"),
            ("email", "a@example.com", "no-at-sign"),
            ("mac", "01:23:45:67:89:ab", "01:23:45"),
            ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
            ("ipv6", "fd00::1", "10.0.0.1"),
            ("duration", "1h30m", "soon"),
            ("duration", "3 days", "3 fortnights"),
            (
                "date-time",
                "2024-01-02T03:04:05.123+01:00",
                "2024-01-02T25:04:05Z",
            ),
            ("hexcolor", "#ffcc00", "#ffcc0"),
            ("rgbcolor", "rgb(255, 0, 10)", "rgb(256,0,0)"),
            ("isbn", "0321751043", "0321751044"),
            ("isbn13", "978-0321751041", "978-0321751042"),
            ("ssn", "123-45-6789", "123-456-789"),
            (
                "uuid4",
                "123e4567-e89b-42d3-a456-426614174000",
                "123e4567-e89b-12d3-a456-426614174000",
            ),
            ("bsonobjectid", "507f1f77bcf86cd799439011", "507f1f77"),
        ] {
            assert!(valid(format, ok), "{format} refuses {ok}");
            assert!(!valid(format, bad), "{format} accepts {bad}");
        }
        assert!(
            valid("int32", "anything"),
            "formats Kubernetes strips check nothing"
        );
    }
}
