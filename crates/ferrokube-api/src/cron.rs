//! Cron schedules as Kubernetes' CronJobs read them: the standard parser
//! of robfig/cron (v3) — five fields (minute, hour, day of month, month,
//! day of week) with `*`, `?`, ranges, steps, lists and month/weekday
//! names, the `@yearly` / `@annually` / `@monthly` / `@weekly` / `@daily`
//! / `@midnight` / `@hourly` and `@every <duration>` descriptors, and a
//! leading `TZ=` or `CRON_TZ=` zone — with the same error messages, and
//! the same search for the next activation (in the schedule's zone, with
//! Go's calendar normalisation and its handling of daylight-saving shifts).

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Zoned};

const STAR_BIT: u64 = 1 << 63;

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// A parsed schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Fields as bit sets (bit 63: the field was `*` or `?`).
    Spec {
        /// Minutes 0-59.
        minute: u64,
        /// Hours 0-23.
        hour: u64,
        /// Days of the month 1-31.
        dom: u64,
        /// Months 1-12.
        month: u64,
        /// Days of the week 0-6, Sunday 0.
        dow: u64,
        /// `None`: the zone of the time asked about.
        zone: Option<TimeZone>,
    },
    /// `@every <duration>`: fixed intervals (rounded to whole seconds, at
    /// least one).
    Every(SignedDuration),
}

/// Why a schedule or a time zone is refused. The messages are robfig/cron's
/// and Go's `time.LoadLocation`'s, which Kubernetes shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// The schedule does not parse: empty, a wrong number of fields, a value
    /// out of range, a bad step or name, an unknown `@` descriptor.
    #[error("{0}")]
    Schedule(String),
    /// The time zone is not in the tz database.
    #[error("unknown time zone {0}")]
    UnknownTimeZone(String),
}

/// Parses a schedule as robfig/cron's `ParseStandard`; the error text is
/// the library's.
pub fn parse_standard(spec: &str) -> Result<Schedule, CronError> {
    parse_spec(spec).map_err(CronError::Schedule)
}

/// [`parse_standard`], the error as robfig/cron words it.
fn parse_spec(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let i = spec.find(' ').unwrap_or(spec.len());
        let eq = spec.find('=').unwrap_or(0);
        let name = &spec[eq + 1..i];
        zone = Some(load_zone(name).map_err(|e| format!("provided bad location {name}: {e}"))?);
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec, zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule::Spec {
        minute: get_field(fields[0], &MINUTES)?,
        hour: get_field(fields[1], &HOURS)?,
        dom: get_field(fields[2], &DOM)?,
        month: get_field(fields[3], &MONTHS)?,
        dow: get_field(fields[4], &DOW)?,
        zone,
    })
}

/// A zone by IANA name, as Go's `time.LoadLocation` (`""` and `UTC`:
/// UTC; `Local`: the system's).
pub fn load_zone(name: &str) -> Result<TimeZone, CronError> {
    match name {
        "" | "UTC" => Ok(TimeZone::UTC),
        "Local" => Ok(TimeZone::system()),
        _ => TimeZone::get(name).map_err(|_| CronError::UnknownTimeZone(name.to_string())),
    }
}

fn all(b: &Bounds) -> u64 {
    bits(b.min, b.max, 1) | STAR_BIT
}

fn descriptor(spec: &str, zone: Option<TimeZone>) -> Result<Schedule, String> {
    let one = |v: u32| 1u64 << v;
    let (minute, hour, dom, month, dow) = match spec {
        "@yearly" | "@annually" => (one(0), one(0), one(1), one(1), all(&DOW)),
        "@monthly" => (one(0), one(0), one(1), all(&MONTHS), all(&DOW)),
        "@weekly" => (one(0), one(0), all(&DOM), all(&MONTHS), one(0)),
        "@daily" | "@midnight" => (one(0), one(0), all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => (one(0), all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => {
            if let Some(d) = spec.strip_prefix("@every ") {
                let d = parse_go_duration(d).map_err(|_| {
                    format!("failed to parse duration {spec}: time: invalid duration \"{d}\"")
                })?;
                let secs = d.as_secs().max(1);
                return Ok(Schedule::Every(SignedDuration::from_secs(secs)));
            }
            return Err(format!("unrecognized descriptor: {spec}"));
        }
    };
    Ok(Schedule::Spec {
        minute,
        hour,
        dom,
        month,
        dow,
        zone,
    })
}

/// Go's duration syntax ("1h30m", "90s", "1.5h").
fn parse_go_duration(s: &str) -> Result<SignedDuration, ()> {
    if s.is_empty() {
        return Err(());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or(())?;
        let v: f64 = rest[..n].parse().map_err(|_| ())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(()),
        };
        total += v * mult;
        rest = &rest[u..];
    }
    Ok(SignedDuration::from_secs_f64(total))
}

fn get_field(field: &str, b: &Bounds) -> Result<u64, String> {
    let mut out = 0;
    for expr in field.split(',') {
        out |= get_range(expr, b)?;
    }
    Ok(out)
}

fn get_range(expr: &str, b: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let mut extra = 0;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = b.min;
        end = b.max;
        extra = STAR_BIT;
    } else {
        start = parse_int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn parse_int_or_name(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some((_, v)) = b.names.iter().find(|(n, _)| *n == lower) {
        return Ok(*v);
    }
    must_parse_int(s)
}

fn must_parse_int(s: &str) -> Result<u32, String> {
    match s.parse::<i64>() {
        Ok(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {s}")),
        Ok(n) if n > i64::from(u32::MAX) => {
            Err(format!("failed to parse int from {s}: value out of range"))
        }
        Ok(n) => Ok(n as u32),
        Err(_) => Err(format!(
            "failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"
        )),
    }
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    if step == 1 {
        return !(u64::MAX << (max + 1)) & (u64::MAX << min);
    }
    let mut b = 0;
    let mut i = min;
    while i <= max {
        b |= 1 << i;
        i += step;
    }
    b
}

fn has(set: u64, v: i8) -> bool {
    set & (1u64 << (v as u32)) != 0
}

/// Go's `time.Date`: civil fields normalised (month 13 is next January,
/// day 32 runs into the next month), then placed in `tz`.
fn go_date(
    year: i16,
    month: i32,
    day: i32,
    hour: i32,
    minute: i32,
    tz: &TimeZone,
) -> Option<Zoned> {
    let months = i32::from(year) * 12 + (month - 1);
    let (y, m) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let first = Date::new(i16::try_from(y).ok()?, m as i8, 1).ok()?;
    let dt: DateTime = first
        .to_datetime(jiff::civil::Time::midnight())
        .checked_add((i64::from(day) - 1).days())
        .ok()?
        .checked_add(i64::from(hour).hours())
        .ok()?
        .checked_add(i64::from(minute).minutes())
        .ok()?;
    dt.to_zoned(tz.clone()).ok()
}

impl Schedule {
    /// The first activation strictly after `t` (`None` if none within five
    /// years, as robfig/cron gives up).
    pub fn next(&self, t: Timestamp, local: &TimeZone) -> Option<Timestamp> {
        match self {
            Schedule::Every(d) => {
                // Whole seconds: drop the fraction, then add.
                let base = Timestamp::from_second(t.as_second()).ok()?;
                base.checked_add(*d).ok()
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
                zone,
            } => {
                let tz = zone.clone().unwrap_or_else(|| local.clone());
                // The upcoming whole second.
                let secs = t.as_second() + 1;
                let z = Timestamp::from_second(secs).ok()?.to_zoned(tz.clone());
                let mut search = Search {
                    year_limit: z.year() + 5,
                    z,
                    added: false,
                    tz,
                };
                loop {
                    if search.z.year() > search.year_limit {
                        return None;
                    }
                    // Each step moves to the next matching value of its
                    // field; `true` when it wrapped past its range, so the
                    // fields before it must be checked again.
                    if search.month(*month)?
                        || search.day(*dom, *dow)?
                        || search.hour(*hour)?
                        || search.minute(*minute)?
                        || search.second()?
                    {
                        continue;
                    }
                    return Some(search.z.timestamp());
                }
            }
        }
    }
}

/// robfig/cron's search for the next activation of a standard schedule: the
/// fields from the month down to the second, each moved forward until it
/// matches. Every step returns `Some(true)` when its field wrapped (the
/// search starts over from the month), `None` when a time cannot be built.
struct Search {
    /// The candidate time.
    z: Zoned,
    /// Whether a field has moved yet (the first move also clears the
    /// smaller fields).
    added: bool,
    /// The schedule's time zone.
    tz: TimeZone,
    /// The year after which the search gives up.
    year_limit: i16,
}

impl Search {
    /// A field moves for the first time: the smaller fields start over.
    fn first_move(&mut self) -> bool {
        !std::mem::replace(&mut self.added, true)
    }

    fn month(&mut self, months: u64) -> Option<bool> {
        while !has(months, self.z.month()) {
            if self.first_move() {
                let z = &self.z;
                self.z = go_date(z.year(), i32::from(z.month()), 1, 0, 0, &self.tz)?;
            }
            let z = &self.z;
            self.z = go_date(
                z.year(),
                i32::from(z.month()) + 1,
                i32::from(z.day()),
                i32::from(z.hour()),
                i32::from(z.minute()),
                &self.tz,
            )?;
            if self.z.month() == 1 {
                return Some(true);
            }
        }
        Some(false)
    }

    /// Whether the candidate's day is one the schedule runs on: both of
    /// day-of-month and day-of-week when either is `*`, else either.
    fn day_matches(&self, dom: u64, dow: u64) -> bool {
        let dom_ok = has(dom, self.z.day());
        let dow_ok = has(dow, self.z.weekday().to_sunday_zero_offset());
        if dom & STAR_BIT != 0 || dow & STAR_BIT != 0 {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        }
    }

    fn day(&mut self, dom: u64, dow: u64) -> Option<bool> {
        while !self.day_matches(dom, dow) {
            if self.first_move() {
                let z = &self.z;
                self.z = go_date(
                    z.year(),
                    i32::from(z.month()),
                    i32::from(z.day()),
                    0,
                    0,
                    &self.tz,
                )?;
            }
            let z = &self.z;
            self.z = go_date(
                z.year(),
                i32::from(z.month()),
                i32::from(z.day()) + 1,
                i32::from(z.hour()),
                i32::from(z.minute()),
                &self.tz,
            )?;
            // A daylight-saving shift moved midnight: go back to it (or on
            // to the next one).
            let h = i64::from(self.z.hour());
            if h != 0 {
                self.z = if h > 12 {
                    self.z.checked_add((24 - h).hours()).ok()?
                } else {
                    self.z.checked_add((-h).hours()).ok()?
                };
            }
            if self.z.day() == 1 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn hour(&mut self, hours: u64) -> Option<bool> {
        while !has(hours, self.z.hour()) {
            if self.first_move() {
                let z = &self.z;
                self.z = go_date(
                    z.year(),
                    i32::from(z.month()),
                    i32::from(z.day()),
                    i32::from(z.hour()),
                    0,
                    &self.tz,
                )?;
            }
            self.z = self.z.checked_add(1.hour()).ok()?;
            if self.z.hour() == 0 {
                return Some(true);
            }
        }
        Some(false)
    }

    fn minute(&mut self, minutes: u64) -> Option<bool> {
        while !has(minutes, self.z.minute()) {
            if self.first_move() {
                self.z = self
                    .z
                    .checked_sub(i64::from(self.z.second()).seconds())
                    .ok()?;
            }
            self.z = self.z.checked_add(1.minute()).ok()?;
            if self.z.minute() == 0 {
                return Some(true);
            }
        }
        Some(false)
    }

    /// The second field of a standard schedule is 0.
    fn second(&mut self) -> Option<bool> {
        if self.z.second() == 0 {
            return Some(false);
        }
        self.added = true;
        self.z = self
            .z
            .checked_add((60 - i64::from(self.z.second())).seconds())
            .ok()?;
        Some(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn next(spec: &str, after: &str) -> String {
        parse_standard(spec)
            .expect("schedule")
            .next(ts(after), &TimeZone::UTC)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn every_minute_and_steps() {
        assert_eq!(
            next("*/1 * * * *", "2026-01-01T00:00:30Z"),
            "2026-01-01T00:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2026-01-01T00:01:00Z"),
            "2026-01-01T00:02:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2026-01-01T00:16:00Z"),
            "2026-01-01T00:30:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-01-01T00:06:00Z"),
            "2026-01-01T00:25:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2026-01-01T10:00:00Z"),
            "2026-01-01T13:00:00Z"
        );
        assert_eq!(
            next("0,30 * * * *", "2026-01-01T00:00:00Z"),
            "2026-01-01T00:30:00Z"
        );
    }

    #[test]
    fn macros() {
        assert_eq!(
            next("@hourly", "2026-03-04T05:06:07Z"),
            "2026-03-04T06:00:00Z"
        );
        assert_eq!(
            next("@daily", "2026-03-04T05:06:07Z"),
            "2026-03-05T00:00:00Z"
        );
        assert_eq!(
            next("@midnight", "2026-03-04T05:06:07Z"),
            "2026-03-05T00:00:00Z"
        );
        // 2026-03-08 is a Sunday.
        assert_eq!(
            next("@weekly", "2026-03-04T05:06:07Z"),
            "2026-03-08T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2026-03-04T05:06:07Z"),
            "2026-04-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2026-03-04T05:06:07Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@annually", "2026-03-04T05:06:07Z"),
            "2027-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 90s", "2026-03-04T05:06:07.5Z"),
            "2026-03-04T05:07:37Z"
        );
    }

    #[test]
    fn names_and_day_of_month_or_week() {
        assert_eq!(
            next("0 0 * JAN-FEB mon", "2026-02-27T00:00:00Z"),
            "2027-01-04T00:00:00Z"
        );
        // Both day fields restricted: either matches (the 13th, or a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2026-03-01T00:00:00Z"),
            "2026-03-06T00:00:00Z"
        );
        assert_eq!(
            next("0 0 13 * 5", "2026-03-12T00:00:00Z"),
            "2026-03-13T00:00:00Z"
        );
        // One restricted: both must match (Friday the 13th).
        assert_eq!(
            next("0 0 13 * *", "2026-03-14T00:00:00Z"),
            "2026-04-13T00:00:00Z"
        );
        // Feb 29 only in leap years.
        assert_eq!(
            next("0 0 29 2 *", "2026-01-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        // Never: gives up.
        assert_eq!(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), "");
    }

    #[test]
    fn time_zones() {
        let s = parse_standard("CRON_TZ=America/New_York 0 9 * * *").expect("schedule");
        let n = s
            .next(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC)
            .expect("next");
        assert_eq!(n.to_string(), "2026-01-01T14:00:00Z");
        let tz = load_zone("Europe/Berlin").expect("zone");
        let s = parse_standard("30 2 * * *").expect("schedule");
        // 2026-03-29 02:30 does not exist in Berlin (clocks jump 2:00 →
        // 3:00): robfig/cron skips that day, and so do we.
        let n = s.next(ts("2026-03-28T02:00:00Z"), &tz).expect("next");
        assert_eq!(n.to_string(), "2026-03-30T00:30:00Z");
        assert!(load_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn errors_word_as_robfig() {
        let e = |s: &str| {
            parse_standard(s)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(e(""), "empty spec string");
        assert_eq!(
            e("* * * *"),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(e("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(
            e("* * 0 * *"),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            e("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            e("*/0 * * * *"),
            "step of range should be a positive number: */0"
        );
        assert_eq!(e("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(
            e("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(e("1-2-3 * * * *"), "too many hyphens: 1-2-3");
    }
}
