//! Timestamps: stored as naive UTC text, served as RFC 1123 dates in GMT like Flask does.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Parses the storage's naive UTC text (`YYYY-MM-DD HH:MM:SS[.ffffff]`, `T` or an offset
/// tolerated).
pub fn parse_stored(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc));
    }
    let trimmed = text.trim_end_matches('Z').trim_end_matches("+00:00").trim_end_matches("+00");
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Some(naive.and_utc());
        }
    }
    None
}

/// `Wed, 01 May 2024 08:42:30 GMT`
pub fn http_date(dt: DateTime<Utc>) -> String {
    dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_to_http_date() {
        let dt = parse_stored("2024-05-01 08:42:30.228257").unwrap();
        assert_eq!(http_date(dt), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01T08:42:30+00:00").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert_eq!(http_date(parse_stored("2024-05-01 08:42:30").unwrap()), "Wed, 01 May 2024 08:42:30 GMT");
        assert!(parse_stored("garbage").is_none());
    }
}
