//! Timestamps: stored as naive UTC text, served as RFC 1123 dates in GMT like Flask does.
//!
//! One parser reads the text forms a time takes outside the REST query-string grammar (which has
//! its own, `http::querystring`): the storage's text, PostgreSQL's, and the ISO 8601 dates and
//! date-times a QueryBuilder client writes.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};

/// Parses an ISO 8601 date or date-time, with or without an offset (none means UTC): the
/// storage's naive UTC text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `T` or an offset tolerated), or a
/// client's `2024-05-01`, `2024-05-01T10:00`, `2024-05-01T10:00:00+02:00`.
pub fn parse_stored(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // Every stored time takes this path; it is read for each row of a list, so it must not
    // go through the trial-and-error of format strings below.
    parse_canonical(text.as_bytes()).or_else(|| parse_general(text))
}

/// Every other shape [`parse_stored`] accepts, by trying format strings.
fn parse_general(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(text, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    let naive = text.trim_end_matches('Z').trim_end_matches("+00:00").trim_end_matches("+00");
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(naive, fmt) {
            return Some(naive.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|n| n.and_utc())
}

/// `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|+00|+00:00|+0000]`, the shapes SQLite and PostgreSQL
/// give a stored UTC time; `None` for anything else (an offset other than zero included).
fn parse_canonical(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some((b'.', after)) = rest.split_first() {
        let digits = after.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let fraction = after[..digits].iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0'));
        nanos = fraction * 10u32.pow(9 - digits as u32);
        rest = &after[digits..];
    }
    if !matches!(rest, b"" | b"Z" | b"+00" | b"+00:00" | b"+0000") {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some(date.and_hms_nano_opt(hour, minute, second, nanos)?.and_utc())
}

/// [`parse_stored`] for a time a client gives: only years from 1 to 9999, what both databases
/// can compare (PostgreSQL refuses other years, and SQLite would compare their text with the
/// stored times character by character).
pub fn parse_client(text: &str) -> Option<DateTime<Utc>> {
    parse_stored(text).filter(|t| (1..=9999).contains(&t.year()))
}

/// The storage's own text of an instant: naive UTC `YYYY-MM-DD HH:MM:SS.ffffff`.
pub fn stored_text(t: DateTime<Utc>) -> String {
    let t = t.naive_utc();
    if !(0..=9999).contains(&t.year()) {
        return t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    }
    // Written digit by digit: these are formatted for every row of large answers, and
    // chrono's `format` reads its pattern again each time (ten times the cost).
    let mut out = String::with_capacity(26);
    push_digits(&mut out, t.year() as u32, 4);
    out.push('-');
    push_digits(&mut out, t.month(), 2);
    out.push('-');
    push_digits(&mut out, t.day(), 2);
    out.push(' ');
    push_clock(&mut out, t);
    out.push('.');
    push_digits(&mut out, t.nanosecond() % 1_000_000_000 / 1_000, 6);
    out
}

/// `Wed, 01 May 2024 08:42:30 GMT`
pub fn http_date(dt: DateTime<Utc>) -> String {
    // Read off the naive UTC time once (each field of a `DateTime` computes it again).
    let dt = dt.naive_utc();
    if !(0..=9999).contains(&dt.year()) {
        return dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    }
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut out = String::with_capacity(29);
    out.push_str(DAYS[dt.weekday().num_days_from_monday() as usize]);
    out.push_str(", ");
    push_digits(&mut out, dt.day(), 2);
    out.push(' ');
    out.push_str(MONTHS[dt.month0() as usize]);
    out.push(' ');
    push_digits(&mut out, dt.year() as u32, 4);
    out.push(' ');
    push_clock(&mut out, dt);
    out.push_str(" GMT");
    out
}

/// `HH:MM:SS` (a leap second, which chrono keeps in the fraction, reads as `:60` as chrono
/// formats it).
fn push_clock(out: &mut String, t: NaiveDateTime) {
    push_digits(out, t.hour(), 2);
    out.push(':');
    push_digits(out, t.minute(), 2);
    out.push(':');
    push_digits(out, t.second() + u32::from(t.nanosecond() >= 1_000_000_000), 2);
}

/// `value` in decimal, zero-padded to `width` digits.
fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_chrono_formats() {
        let mut t = DateTime::<Utc>::from_timestamp(-62_135_596_800, 0).unwrap(); // 0001-01-01
        let step = chrono::Duration::seconds(7_919_993) + chrono::Duration::microseconds(123_457);
        for _ in 0..10_000 {
            assert_eq!(stored_text(t), t.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
            assert_eq!(http_date(t), t.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
            t += step;
        }
        let leap = parse_stored("2016-12-31 23:59:59.5").unwrap().with_nanosecond(1_500_000_000).unwrap();
        assert_eq!(stored_text(leap), leap.format("%Y-%m-%d %H:%M:%S%.6f").to_string());
        assert_eq!(http_date(leap), leap.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    }

    #[test]
    fn stored_text_to_http_date() {
        let dt = parse_stored("2024-05-01 08:42:30.228257").unwrap();
        assert_eq!(http_date(dt), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01T08:42:30+00:00").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01 08:42:30").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01 08:42:30Z").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01 08:42:30.5+00").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert!(parse_stored("garbage").is_none());
    }

    #[test]
    fn canonical_shapes_read_as_the_general_parser_does() {
        for text in [
            "2024-05-01 08:42:30.228257",
            "2024-05-01T08:42:30.228257",
            "2024-05-01 08:42:30",
            "2024-05-01 08:42:30.5+00",
            "2024-05-01 08:42:30.123456789Z",
            "2024-05-01T08:42:30+00:00",
            "2024-02-29 23:59:59.000001+0000",
        ] {
            let fast = parse_canonical(text.as_bytes());
            assert!(fast.is_some(), "{text}");
            let general = parse_general(text);
            assert_eq!(fast, general, "{text}");
        }
        for text in [
            "2024-05-01 08:42:30+02:00",
            "2024-13-01 08:42:30",
            "2024-05-01 08:42",
            "2024-05-01 08:42:30.",
            "2024-05-01 08:42:30.1234567890",
            "2024-05-01x08:42:30",
            "2024-05-01 08:42:30 ",
        ] {
            assert_eq!(parse_canonical(text.as_bytes()), None, "{text}");
        }
        // Offsets other than zero still parse, on the general path.
        assert_eq!(http_date(parse_stored("2024-05-01 10:42:30+02:00").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
    }

    #[test]
    fn client_times() {
        let t = |s: &str| parse_client(s).map(stored_text);
        assert_eq!(t("2024-05-01").as_deref(), Some("2024-05-01 00:00:00.000000"));
        assert_eq!(t("2024-05-01T10:00:00+02:00").as_deref(), Some("2024-05-01 08:00:00.000000"));
        assert_eq!(t("2024-05-01T10:00").as_deref(), Some("2024-05-01 10:00:00.000000"));
        assert_eq!(t("2024-05-01 08:42:30.228257").as_deref(), Some("2024-05-01 08:42:30.228257"));
        assert_eq!(t("2024-05-01 08:42:30.228257+00:00").as_deref(), Some("2024-05-01 08:42:30.228257"));
        assert_eq!(t("yesterday"), None);
        assert_eq!(t("9999-12-31T23:59:59").as_deref(), Some("9999-12-31 23:59:59.000000"));
        assert_eq!(t("0001-01-01").as_deref(), Some("0001-01-01 00:00:00.000000"));
        assert_eq!(t("+99999-01-01"), None);
        assert_eq!(t("0000-01-01"), None);
        assert_eq!(t("-0001-01-01"), None);
    }
}
