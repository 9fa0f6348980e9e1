//! DN amounts: parsed from decimal text exactly (18 decimals, no floating point) and formatted
//! back without losing a wei.

use alloy::primitives::U256;

/// Decimals of DN.
pub const DECIMALS: usize = 18;

/// Parses a decimal amount of DN (`1`, `1.5`, `0.000000000000000001`) into wei. Refuses signs,
/// exponents, separators, empty input and more than 18 decimals, naming what was wrong.
pub fn parse_dn(text: &str) -> Result<U256, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("an amount of DN is empty".into());
    }
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return Err(format!("`{s}` is not an amount of DN"));
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not a decimal amount of DN (digits and one `.`, e.g. 1.5)"
        ));
    }
    if frac.len() > DECIMALS {
        return Err(format!(
            "`{s}` has {} decimals; DN has {DECIMALS}",
            frac.len()
        ));
    }
    let digits = format!("{whole}{frac:0<DECIMALS$}");
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(U256::ZERO);
    }
    U256::from_str_radix(digits, 10).map_err(|_| format!("`{s}` DN is too large"))
}

/// Wei as DN with every significant decimal (`1.5`, `0.000000000000000001`, `12`).
pub fn format_dn(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(DECIMALS));
    let whole = wei / unit;
    let frac = wei % unit;
    if frac.is_zero() {
        return whole.to_string();
    }
    let frac = format!("{:0>DECIMALS$}", frac.to_string());
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// A price in DN as the registry's `uint96`, or an error naming the largest price.
pub fn to_price(wei: U256) -> Result<alloy::primitives::Uint<96, 2>, String> {
    alloy::primitives::Uint::<96, 2>::checked_from_limbs_slice(wei.as_limbs()).ok_or_else(|| {
        format!(
            "{} DN is above the largest price the registry stores ({} DN)",
            format_dn(wei),
            format_dn(U256::from(alloy::primitives::Uint::<96, 2>::MAX))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wei(s: &str) -> U256 {
        s.parse().unwrap()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(parse_dn("1").unwrap(), wei("1000000000000000000"));
        assert_eq!(parse_dn("1.5").unwrap(), wei("1500000000000000000"));
        assert_eq!(parse_dn(" 0.75 ").unwrap(), wei("750000000000000000"));
        assert_eq!(parse_dn(".5").unwrap(), wei("500000000000000000"));
        assert_eq!(parse_dn("2.").unwrap(), wei("2000000000000000000"));
        assert_eq!(parse_dn("0.000000000000000001").unwrap(), U256::from(1));
        assert_eq!(parse_dn("0").unwrap(), U256::ZERO);
        assert_eq!(parse_dn("000.000").unwrap(), U256::ZERO);
        // beyond f64's precision: exact all the same
        assert_eq!(
            parse_dn("123456789.123456789123456789").unwrap(),
            wei("123456789123456789123456789")
        );
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for bad in [
            "", " ", ".", "-1", "+1", "1e18", "1,5", "1.2.3", "0x10", "abc", "1 000",
        ] {
            assert!(parse_dn(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_dn("0.0000000000000000001").unwrap_err();
        assert!(e.contains("19 decimals"), "{e}");
        let huge = "9".repeat(80);
        assert!(parse_dn(&huge).unwrap_err().contains("too large"));
    }

    #[test]
    fn formats_every_decimal_and_round_trips() {
        assert_eq!(format_dn(U256::ZERO), "0");
        assert_eq!(format_dn(wei("1000000000000000000")), "1");
        assert_eq!(format_dn(wei("1500000000000000000")), "1.5");
        assert_eq!(format_dn(U256::from(1)), "0.000000000000000001");
        assert_eq!(
            format_dn(wei("123456789123456789123456789")),
            "123456789.123456789123456789"
        );
        for s in ["0.5", "10", "0.000000000000000001", "7.123456789012345678"] {
            assert_eq!(format_dn(parse_dn(s).unwrap()), s);
        }
    }

    #[test]
    fn prices_fit_uint96() {
        assert!(to_price(parse_dn("1.5").unwrap()).is_ok());
        let e = to_price(parse_dn("100000000000").unwrap()).unwrap_err();
        assert!(e.contains("largest price"), "{e}");
    }
}
