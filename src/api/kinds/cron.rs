//! A validator for CronJob schedules with the grammar of the cron library
//! upstream uses (robfig/cron `ParseStandard`): five fields (minute, hour,
//! day of month, month, day of week) of values, names, ranges, steps and
//! lists, or a descriptor such as `@hourly` or `@every 1h30m`. Errors read as
//! that library's do, since they are shown to users verbatim.

/// One field's bounds and the names it accepts.
struct FieldSpec {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: FieldSpec = FieldSpec {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule: bit `n` of a field is set when value `n` matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronSpec {
    /// Five fields; `dom_star`/`dow_star` record a field that started with
    /// `*` or `?` (unstepped), which makes day matching an AND instead of
    /// robfig/cron's OR of day of month and day of week.
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        dom_star: bool,
        dow_star: bool,
    },
    /// `@every <duration>`: a fixed delay, in whole seconds (at least 1).
    Every(u64),
}

/// Checks a schedule; the error text is what upstream reports.
pub fn validate_schedule(spec: &str) -> Result<(), String> {
    let spec = spec.trim();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        // handled by the caller with upstream's dedicated message
        return Ok(());
    }
    parse_schedule(spec).map(|_| ())
}

/// Parses a schedule as robfig/cron's `ParseStandard` does.
pub fn parse_schedule(spec: &str) -> Result<CronSpec, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if let Some(rest) = spec.strip_prefix("@every ") {
        return parse_go_duration(rest.trim())
            .map(|secs| CronSpec::Every((secs.floor() as u64).max(1)))
            .ok_or_else(|| {
                format!(
                    "failed to parse duration {spec}: time: invalid duration {:?}",
                    rest.trim()
                )
            });
    }
    if spec.starts_with('@') {
        let fields = match spec {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            _ => return Err(format!("unrecognized descriptor: {spec}")),
        };
        return parse_schedule(fields);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let mut bits = [0u64; 5];
    let mut star = [false; 5];
    for (i, (field, fs)) in fields
        .iter()
        .zip([&MINUTE, &HOUR, &DOM, &MONTH, &DOW])
        .enumerate()
    {
        for part in field.split(',') {
            let (b, s) = parse_range(part, fs)?;
            bits[i] |= b;
            star[i] |= s;
        }
    }
    Ok(CronSpec::Fields {
        minute: bits[0],
        hour: bits[1],
        dom: bits[2],
        month: bits[3],
        dow: bits[4],
        dom_star: star[2],
        dow_star: star[4],
    })
}

/// One comma-separated part of a field: its bits and whether it is an
/// unstepped wildcard.
fn parse_range(expr: &str, fs: &FieldSpec) -> Result<(u64, bool), String> {
    let parts: Vec<&str> = expr.split('/').collect();
    let bounds: Vec<&str> = parts[0].split('-').collect();
    let wildcard = bounds[0] == "*" || bounds[0] == "?";
    let mut step = 1;
    let (start, mut end) = if wildcard {
        (fs.min, fs.max)
    } else {
        let start = parse_value(bounds[0], fs)?;
        let end = match bounds.len() {
            1 => start,
            2 => parse_value(bounds[1], fs)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    match parts.len() {
        1 => {}
        2 => {
            step = parse_int(parts[1])?;
            if step == 0 {
                return Err(format!("step of range should be a positive number: {expr}"));
            }
            // `N/step` means N through the maximum
            if !wildcard && bounds.len() == 1 {
                end = fs.max;
            }
        }
        _ => return Err(format!("too many slashes: {expr}")),
    }
    if start < fs.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            fs.min
        ));
    }
    if end > fs.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            fs.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    let bits = (start..=end)
        .step_by(step as usize)
        .fold(0u64, |b, v| b | (1 << v));
    Ok((bits, wildcard && step == 1))
}

fn parse_value(s: &str, fs: &FieldSpec) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = fs.names.iter().position(|n| *n == lower) {
        return Ok(fs.min + i as u32);
    }
    parse_int(s)
}

fn parse_int(s: &str) -> Result<u32, String> {
    if s.starts_with('-') {
        return Err(format!("negative number ({s}) not allowed: {s}"));
    }
    s.parse::<u32>().map_err(|_| {
        format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
    })
}

/// Parses a Go duration string (`1h30m`, `90s`, `1.5h`) into seconds.
pub fn parse_go_duration(s: &str) -> Option<f64> {
    if s == "0" {
        return Some(0.0);
    }
    let mut rest = s;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_standard_schedules() {
        for ok in [
            "* * * * *",
            "*/5 * * * *",
            "0 0 * * 0",
            "15 2-4 1,15 * MON-FRI",
            "0 12 ? JAN,jul sun",
            "5/10 * * * *",
            "@hourly",
            "@daily",
            "@every 1h30m",
        ] {
            assert_eq!(validate_schedule(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_schedules() {
        assert_eq!(
            validate_schedule("* * *"),
            Err("expected exactly 5 fields, found 3: [* * *]".into())
        );
        assert_eq!(
            validate_schedule("60 * * * *"),
            Err("end of range (60) above maximum (59): 60".into())
        );
        assert_eq!(
            validate_schedule("* * 0 * *"),
            Err("beginning of range (0) below minimum (1): 0".into())
        );
        assert_eq!(
            validate_schedule("@often"),
            Err("unrecognized descriptor: @often".into())
        );
        assert!(validate_schedule("*/0 * * * *").is_err());
        assert!(validate_schedule("5-2 * * * *").is_err());
        assert!(validate_schedule("a * * * *").is_err());
        assert!(validate_schedule("* * * * 7").is_err());
        assert!(validate_schedule("1-2-3 * * * *").is_err());
        assert!(validate_schedule("@every soon").is_err());
        assert!(validate_schedule("").is_err());
    }
}
