//! Registry time as calendar dates: whole calendar years added to or taken
//! from an instant (29 February plus a year is 28 February), the UTC date of
//! an instant, and the strict `YYYY-MM-DD` form requests and messages use.
//! Part of the registry's foundation: no command family is below it.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

/// `ms` plus `years` calendar years, in ms; `None` out of chrono's range.
pub fn add_years(ms: i64, years: u32) -> Option<i64> {
    let at = DateTime::<Utc>::from_timestamp_millis(ms)?;
    let later = at.checked_add_months(Months::new(years.checked_mul(12)?))?;
    Some(later.timestamp_millis())
}

/// `ms` minus `years` calendar years, in ms; `None` out of chrono's range.
pub fn sub_years(ms: i64, years: u32) -> Option<i64> {
    let at = DateTime::<Utc>::from_timestamp_millis(ms)?;
    let earlier = at.checked_sub_months(Months::new(years.checked_mul(12)?))?;
    Some(earlier.timestamp_millis())
}

/// The UTC calendar date of `ms`.
pub fn utc_date(ms: i64) -> Option<NaiveDate> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.date_naive())
}

/// Parses exactly `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[5..7].parse().ok()?;
    let day = text[8..10].parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    debug_assert_eq!(date.year(), year);
    Some(date)
}

/// The UTC date of `ms` as `YYYY-MM-DD` for messages and audit records (the
/// raw milliseconds when out of range).
pub fn date(ms: i64) -> String {
    utc_date(ms).map_or_else(|| ms.to_string(), |d| d.to_string())
}

/// The UTC time of `ms` in RFC 3339 with milliseconds (as EPP writes
/// times), for messages (the raw milliseconds when out of range).
pub fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(date: &str) -> i64 {
        parse_date(date)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .expect("test dates are valid")
    }

    #[test]
    fn years_are_calendar_years() {
        assert_eq!(
            utc_date(add_years(ms("2024-03-01"), 1).unwrap()),
            parse_date("2025-03-01")
        );
        // 29 February plus a year is 28 February.
        assert_eq!(
            utc_date(add_years(ms("2024-02-29"), 1).unwrap()),
            parse_date("2025-02-28")
        );
        assert_eq!(
            utc_date(add_years(ms("2024-02-29"), 4).unwrap()),
            parse_date("2028-02-29")
        );
        assert_eq!(add_years(ms("2024-02-29"), 0), Some(ms("2024-02-29")));
        assert_eq!(add_years(i64::MAX, 1), None);
        assert_eq!(add_years(0, u32::MAX), None);
    }

    #[test]
    fn only_strict_iso_dates_parse() {
        assert_eq!(
            parse_date("2025-01-05"),
            NaiveDate::from_ymd_opt(2025, 1, 5)
        );
        for bad in [
            "2025-1-05",
            "2025-01-5",
            "2025/01/05",
            "2025-02-30",
            "+202-01-05",
            "",
            "2025-01-05T00:00:00Z",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
