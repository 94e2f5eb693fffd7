//! Floats as fixed-point text: the bytes of `format!("{x:.6}")`, made with integer
//! arithmetic, faster than std's exact formatting (docs/benchmarks.md).

use std::io::Write as _;

use crate::CSV_FLOAT_PRECISION;

/// `10^CSV_FLOAT_PRECISION`.
const SCALE: u64 = 10u64.pow(CSV_FLOAT_PRECISION as u32);

/// The digit pairs 00 to 99.
const PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

/// Room for the text of [`fixed`]: a sign, 14 whole digits (below 1.8e13), a point
/// and 6 decimals.
pub(crate) type Text = [u8; 24];

/// `x` as `format!("{x:.6}")` writes it, in `text`: the exact binary value rounded
/// to [`CSV_FLOAT_PRECISION`] decimals, ties to even, a `-` for every negative
/// number (zero too). `None` when std has to write it: not finite, or 1.8e13 and
/// above.
fn fixed(x: f64, text: &mut Text) -> Option<&[u8]> {
    const _: () = assert!(CSV_FLOAT_PRECISION == 6, "three digit pairs of decimals");
    let n = scaled(x.abs())?;
    let (mut whole, mut fraction) = (n / SCALE, n % SCALE);
    let mut at = text.len();
    let pair = |text: &mut Text, at: &mut usize, value: u64| {
        *at -= 2;
        text[*at..*at + 2].copy_from_slice(&PAIRS[value as usize]);
    };
    for _ in 0..3 {
        pair(text, &mut at, fraction % 100);
        fraction /= 100;
    }
    at -= 1;
    text[at] = b'.';
    while whole >= 100 {
        pair(text, &mut at, whole % 100);
        whole /= 100;
    }
    if whole >= 10 {
        pair(text, &mut at, whole);
    } else {
        at -= 1;
        text[at] = b'0' + whole as u8;
    }
    if x.is_sign_negative() {
        at -= 1;
        text[at] = b'-';
    }
    Some(&text[at..])
}

/// `x * 10^6` rounded to an integer, ties to even, for finite `x >= 0` whose
/// result fits 64 bits.
fn scaled(x: f64) -> Option<u64> {
    if !x.is_finite() {
        return None;
    }
    let bits = x.to_bits();
    let biased = (bits >> 52) as i32;
    let fraction = bits & ((1 << 52) - 1);
    // x = mantissa * 2^exponent exactly.
    let (mantissa, exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), biased - 1075)
    };
    if exponent >= 0 {
        return None; // x >= 2^52, so x * 10^6 does not fit
    }
    let product = u128::from(mantissa) * u128::from(SCALE); // below 2^73
    let shift = exponent.unsigned_abs();
    if shift > 73 {
        return Some(0); // below half of the last digit
    }
    let quotient = product >> shift;
    let remainder = product - (quotient << shift);
    let half = 1u128 << (shift - 1);
    let up = remainder > half || (remainder == half && quotient & 1 == 1);
    u64::try_from(quotient + u128::from(up)).ok()
}

/// Appends `x`'s text to `out`: [`fixed`]'s, or std's where it has none; `text` is
/// scratch room.
pub(crate) fn push(out: &mut Vec<u8>, x: f64, text: &mut Text) {
    match fixed(x, text) {
        Some(cell) => out.extend_from_slice(cell),
        None => {
            let _ = write!(out, "{x:.CSV_FLOAT_PRECISION$}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(x: f64) -> String {
        let mut out = Vec::new();
        push(&mut out, x, &mut Text::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_kind_of_float_reads_as_std_writes_it() {
        let special = [
            0.0,
            -0.0,
            0.0078125, // a tie below the last digit: to even
            0.0234375,
            2.5e-7,
            -2.5e-7,
            5e-7,
            4.999_999_999_999_999e-7,
            1.5e-6,
            0.125,
            123_456_789.000_000_5,
            9_007_199_254_740_993.0,
            18_446_744_073_709.55,
            18_446_744_073_709.56,
            99_999_999_999_999.99,
            f64::MIN_POSITIVE,
            5e-324,
            f64::EPSILON,
            2f64.powi(73),
            2f64.powi(74),
            1e30,
            f64::MAX,
            f64::MIN,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in special {
            assert_eq!(text(x), format!("{x:.6}"), "{x:e}");
        }
    }

    #[test]
    fn random_bits_and_values_near_ties_read_as_std_writes_them() {
        // xorshift: no seed file, the same values every run.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let bits = f64::from_bits(next());
            // Values analytics writes: within a few orders of magnitude of 1.
            let scale = 10f64.powi((next() % 14) as i32 - 7);
            let plain = (next() as f64 / u64::MAX as f64 - 0.5) * scale;
            // Odd multiples of 2^-7 are exactly halfway between two outputs.
            let tie = (2 * (next() >> 24) + 1) as f64 / 128.0;
            for x in [bits, plain, tie, tie.next_up(), tie.next_down()] {
                assert_eq!(text(x), format!("{x:.6}"), "{:#x}", x.to_bits());
            }
        }
    }
}
