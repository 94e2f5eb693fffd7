//! Adjusted Rand index.

use std::collections::HashMap;

fn pairs(count: u64) -> u128 {
    let c = u128::from(count);
    c * c.saturating_sub(1) / 2
}

/// Adjusted Rand index of two labelings of the same items (Hubert & Arabie): 1 for
/// identical partitions (whatever the label values), about 0 for independent ones.
/// Items past the end of the shorter slice are ignored; with fewer than two items the
/// partitions cannot disagree and the index is 1.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    let mut joint: HashMap<(u32, u32), u64> = HashMap::new();
    let mut rows: HashMap<u32, u64> = HashMap::new();
    let mut cols: HashMap<u32, u64> = HashMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    // exact integer pair counts; sums of u128 do not depend on map iteration order
    let index = joint.values().map(|&c| pairs(c)).sum::<u128>() as f64;
    let sum_a = rows.values().map(|&c| pairs(c)).sum::<u128>() as f64;
    let sum_b = cols.values().map(|&c| pairs(c)).sum::<u128>() as f64;
    let total = pairs(n as u64) as f64;
    if total == 0.0 {
        return 1.0;
    }
    let expected = sum_a * sum_b / total;
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 1]), 1.0);
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[5, 5, 2, 2]), 1.0);
        // scikit-learn's documented examples: 0.57 and 0.0
        // index 1, row pairs 2, column pairs 1, 6 pairs: (1 - 1/3) / (3/2 - 1/3) = 4/7
        let ari = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]);
        assert!((ari - 4.0 / 7.0).abs() < 1e-15);
        assert_eq!(adjusted_rand_index(&[0, 0, 0, 0], &[0, 1, 2, 3]), 0.0);
        // 6 items: index 2, row pairs 6, column pairs 3, 15 pairs -> (2 - 1.2) / (4.5 - 1.2)
        let ari = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]);
        assert!((ari - 0.8 / 3.3).abs() < 1e-15);
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(adjusted_rand_index(&[], &[]), 1.0);
        assert_eq!(adjusted_rand_index(&[3], &[4]), 1.0);
        assert_eq!(adjusted_rand_index(&[1, 1, 1], &[2, 2, 2]), 1.0);
        assert_eq!(adjusted_rand_index(&[0, 1, 2], &[0, 1, 2, 2]), 1.0);
    }
}
