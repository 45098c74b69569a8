//! Kubernetes resource quantities (`100m`, `1Gi`, `1e3`, `0.5`): parsing into
//! an exact value in nano-units, so that requests and limits compare as
//! upstream's `resource.Quantity` does. The scheduler and quota code can use
//! the same type.

use std::cmp::Ordering;
use std::fmt;

/// Upstream's wording for a malformed quantity.
pub const FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A parsed quantity: its value times 10^9, saturated at the i128 range
/// (far beyond any real resource amount), and the notation it was written
/// in, which its canonical form keeps.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

/// The notation of a quantity, as upstream's `resource.Format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `k`, `M`, `m`, ... or no suffix.
    DecimalSi,
    /// `Ki`, `Mi`, ...
    BinarySi,
    /// `e3`, `E-2`, ...
    DecimalExponent,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Why a string is not a quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// The string does not have a quantity's shape.
    #[error("{FORMAT_MSG}")]
    Format,
    /// The number part does not parse.
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// The suffix is not one of the known ones.
    #[error("unable to parse quantity's suffix")]
    Suffix,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// The zero quantity.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSi,
    };

    /// Parses a quantity string as upstream's `resource.ParseQuantity`.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::Format);
        }
        let (negative, rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_len);
        if number.is_empty() || number == "." {
            return Err(QuantityError::Format);
        }
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) if !f.contains('.') => (i, f),
            Some(_) => return Err(QuantityError::Numeric),
            None => (number, ""),
        };
        let (base, exp10) = parse_suffix(suffix)?;
        let format = if base != 1 {
            Format::BinarySi
        } else if suffix.starts_with(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSi
        };
        // digits as one integer, with the decimal point moved into exp10
        let mut mantissa: i128 = 0;
        let mut overflow_digits: i32 = 0;
        for d in int_part.bytes().chain(frac_part.bytes()) {
            match mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(d - b'0')))
            {
                Some(m) if overflow_digits == 0 => mantissa = m,
                _ => overflow_digits += 1,
            }
        }
        let exp = exp10 + overflow_digits + 9 - frac_part.len() as i32;
        let mut nanos = scale(mantissa, exp);
        if base != 1 {
            nanos = nanos.saturating_mul(base);
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
            format,
        })
    }

    /// Rounds up to a multiple of 1/1000, as upstream's defaulting of
    /// resource lists does (`0.5m` becomes `1m`).
    pub fn round_up_to_milli(self) -> Quantity {
        let rem = self.nanos.rem_euclid(1_000_000);
        let nanos = if rem == 0 {
            self.nanos
        } else {
            self.nanos.saturating_add(1_000_000 - rem)
        };
        Quantity { nanos, ..self }
    }

    /// Upstream's canonical string: the largest SI (or binary, for binary
    /// quantities that are whole and at least 1024) suffix that keeps the
    /// number whole, e.g. `1000m` → `1`, `0.5` → `500m`, `1024Mi` → `1Gi`.
    pub fn canonical(&self) -> String {
        let negative = self.nanos < 0;
        let abs = self.nanos.unsigned_abs();
        let sign = if negative { "-" } else { "" };
        let whole = abs % (NANO as u128) == 0;
        if self.format == Format::BinarySi && whole && abs >= 1024 * NANO as u128 {
            let mut value = abs / NANO as u128;
            let mut power = 0;
            while power < 6 && value % 1024 == 0 {
                value /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return format!("{sign}{value}{suffix}");
        }
        // mantissa × 10^exp with exp a multiple of 3, as large as possible
        let mut mantissa = abs;
        let mut exp: i32 = -9;
        while mantissa != 0
            && mantissa % 1000 == 0
            && (exp < 18 || self.format == Format::DecimalExponent)
        {
            mantissa /= 1000;
            exp += 3;
        }
        if mantissa == 0 {
            return "0".into();
        }
        match self.format {
            Format::DecimalExponent if exp == 0 => format!("{sign}{mantissa}"),
            Format::DecimalExponent => format!("{sign}{mantissa}e{exp}"),
            _ => {
                let suffix = match exp {
                    -9 => "n",
                    -6 => "u",
                    -3 => "m",
                    0 => "",
                    3 => "k",
                    6 => "M",
                    9 => "G",
                    12 => "T",
                    15 => "P",
                    _ => "E",
                };
                format!("{sign}{mantissa}{suffix}")
            }
        }
    }

    /// A whole number, such as an object count.
    pub fn count(n: i128) -> Quantity {
        Quantity {
            nanos: n.saturating_mul(NANO),
            format: Format::DecimalSi,
        }
    }

    /// The value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (as CPU is accounted).
    pub fn millis(&self) -> i128 {
        let m = self.nanos / 1_000_000;
        if self.nanos % 1_000_000 > 0 { m + 1 } else { m }
    }

    /// The value in whole units, rounded up (as bytes are accounted).
    pub fn value(&self) -> i128 {
        let v = self.nanos / NANO;
        if self.nanos % NANO > 0 { v + 1 } else { v }
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;

    /// The sum, in the notation of the first non-zero operand.
    fn add(self, other: Quantity) -> Quantity {
        let format = if self.nanos == 0 {
            other.format
        } else {
            self.format
        };
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format,
        }
    }
}

impl std::ops::Sub for Quantity {
    type Output = Quantity;

    /// The difference, in the notation of the first operand.
    fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: self.format,
        }
    }
}

impl PartialOrd<i128> for Quantity {
    fn partial_cmp(&self, other: &i128) -> Option<Ordering> {
        Some(self.nanos.cmp(&other.saturating_mul(NANO)))
    }
}

impl PartialEq<i128> for Quantity {
    fn eq(&self, other: &i128) -> bool {
        self.nanos == other.saturating_mul(NANO)
    }
}

impl fmt::Display for Quantity {
    /// A plain decimal rendering (not upstream's canonical suffix form).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.nanos / NANO;
        let frac = (self.nanos % NANO).abs();
        if frac == 0 {
            write!(f, "{whole}")
        } else {
            let digits = format!("{frac:09}");
            let sign = if self.nanos < 0 && whole == 0 {
                "-"
            } else {
                ""
            };
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

/// Multiplies `m` by 10^exp, rounding a fraction up (away from zero) as
/// upstream rounds to its smallest scale.
fn scale(m: i128, exp: i32) -> i128 {
    if exp >= 0 {
        let mut v = m;
        for _ in 0..exp {
            v = v.saturating_mul(10);
            if v == i128::MAX {
                break;
            }
        }
        v
    } else {
        let mut v = m;
        let mut remainder = false;
        for _ in 0..(-exp).min(40) {
            remainder |= v % 10 != 0;
            v /= 10;
        }
        if remainder { v + 1 } else { v }
    }
}

/// The binary multiplier and decimal exponent of a suffix.
fn parse_suffix(s: &str) -> Result<(i128, i32), QuantityError> {
    let binary = |p: u32| Ok((1i128 << (10 * p), 0));
    match s {
        "" => Ok((1, 0)),
        "n" => Ok((1, -9)),
        "u" => Ok((1, -6)),
        "m" => Ok((1, -3)),
        "k" => Ok((1, 3)),
        "M" => Ok((1, 6)),
        "G" => Ok((1, 9)),
        "T" => Ok((1, 12)),
        "P" => Ok((1, 15)),
        "E" => Ok((1, 18)),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let exp = s.strip_prefix('e').or_else(|| s.strip_prefix('E')).ok_or(
                if valid_suffix_chars(s) {
                    QuantityError::Suffix
                } else {
                    QuantityError::Format
                },
            )?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QuantityError::Format);
            }
            let n: i32 = exp.parse().map_err(|_| QuantityError::Suffix)?;
            if !(-100..=100).contains(&n) {
                return Err(QuantityError::Numeric);
            }
            Ok((1, n))
        }
    }
}

fn valid_suffix_chars(s: &str) -> bool {
    let letters_end = s.find(['+', '-']).unwrap_or(s.len());
    let (letters, rest) = s.split_at(letters_end);
    letters.chars().all(|c| "eEinumkKMGTP".contains(c))
        && rest
            .strip_prefix(['+', '-'])
            .unwrap_or(rest)
            .bytes()
            .all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).expect(s)
    }

    #[test]
    fn parses_common_forms() {
        assert_eq!(q("100m").millis(), 100);
        assert_eq!(q("1").millis(), 1000);
        assert_eq!(q("0.5").millis(), 500);
        assert_eq!(q("1Gi").value(), 1 << 30);
        assert_eq!(q("128Mi").value(), 128 << 20);
        assert_eq!(q("1e3").value(), 1000);
        assert_eq!(q("1E3").value(), 1000);
        assert_eq!(q("2k").value(), 2000);
        assert_eq!(q("1.5G").value(), 1_500_000_000);
        assert_eq!(q("5n").nanos(), 5);
        assert_eq!(q("+3").value(), 3);
        assert!(q("-1").is_negative());
        assert_eq!(q(".5").millis(), 500);
        assert!(q("1") == 1);
        assert!(q("500m") < q("1"));
        assert_eq!(q("1000m"), q("1"));
    }

    #[test]
    fn canonical_forms_match_upstream() {
        for (input, canonical) in [
            ("1000m", "1"),
            ("0.5", "500m"),
            ("1.5", "1500m"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("512Ki", "512Ki"),
            ("1000Ki", "1000Ki"),
            ("0.5Gi", "512Mi"),
            ("1e3", "1e3"),
            ("1500e-3", "1500e-3"),
            ("2000", "2k"),
            ("128974848", "128974848"),
            ("129e6", "129e6"),
            ("0", "0"),
            ("100m", "100m"),
            ("-2k", "-2k"),
        ] {
            assert_eq!(q(input).canonical(), canonical, "{input}");
        }
        assert_eq!(q("0.5m").round_up_to_milli().canonical(), "1m");
        assert_eq!(q("1.0001").round_up_to_milli().canonical(), "1001m");
    }

    #[test]
    fn rounds_sub_nano_fractions_up() {
        assert_eq!(q("0.1n").nanos(), 1);
        assert_eq!(q("1.5m").to_string(), "0.0015");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "1.2.3", "abc", "1Q", "1Gb", "1e", "1ex", "--1", ".", "1 Gi", "Gi",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad} should not parse");
        }
        assert_eq!(Quantity::parse("1.2.3"), Err(QuantityError::Numeric));
    }

    #[test]
    fn huge_values_saturate_instead_of_panicking() {
        assert!(q("99999999999999999999999999999999999999999999Ei").nanos() > 0);
        assert!(q("1e100").nanos() > 0);
        assert!(Quantity::parse("1e1000").is_err());
    }
}
