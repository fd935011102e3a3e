//! RFC 3339 times with any UTC offset (`2026-12-07T10:00:00Z`, `…T12:00:00.250+02:00`), as
//! Unix milliseconds: the order of a series.

/// Unix milliseconds of an RFC 3339 date-time.
pub fn parse_rfc3339_ms(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = s
            .get(from..from + len)
            .filter(|p| p.bytes().all(|c| c.is_ascii_digit()))
            .ok_or_else(|| "expected e.g. 2026-12-07T10:00:00Z".to_string())?;
        Ok(part.parse::<i64>().expect("digits"))
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err("expected e.g. 2026-12-07T10:00:00Z".into());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("no such date".into());
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("no such time of day".into());
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err("a '.' must be followed by fractional seconds".into());
        }
        let frac = &s[at + 1..at + 1 + digits.min(3)];
        millis = frac.parse::<i64>().expect("digits") * 10_i64.pow(3 - frac.len() as u32);
        at += 1 + digits;
    }
    let offset_min = match &s[at..] {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (num(at + 1, 2)? * 60 + num(at + 4, 2)?)
        }
        _ => return Err("the time needs an offset: Z or +hh:mm".into()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Ok(secs * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_rfc3339_ms;

    #[test]
    fn offsets_fractions_and_bad_times() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_rfc3339_ms("2026-12-07T10:00:00.250Z"),
            Ok(1_796_637_600_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-12-07T12:00:00.25+02:00"),
            parse_rfc3339_ms("2026-12-07T10:00:00.250Z")
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T00:00:00-01:30"),
            Ok(1_709_170_200_000)
        );
        for bad in [
            "2026-12-07",
            "2026-12-07T10:00:00",
            "2026-02-30T10:00:00Z",
            "2026-12-07T25:00:00Z",
            "yesterday at noon",
            "2026-12-07T10:00:00.Z",
        ] {
            assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
        }
    }
}
