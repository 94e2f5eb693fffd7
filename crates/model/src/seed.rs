//! Seeds: every random draw of a run follows from the pipeline's one seed, each
//! stream of draws from a seed of its own derived here.

/// SplitMix64's increment, the golden ratio in 64 bits.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's next output after the state `x`: spreads seeds and indices over all
/// 64 bits.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An independent seed for stream `stream` of `seed`: SplitMix64's output at the
/// stream's place in its sequence.
pub fn derive(seed: u64, stream: u64) -> u64 {
    splitmix64(seed.wrapping_add(stream.wrapping_mul(GAMMA)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        assert_ne!(derive(1, 2), derive(1, 3));
        assert_ne!(derive(1, 2), derive(2, 2));
        assert_eq!(derive(7, 5), derive(7, 5));
        // SplitMix64's first output from state 0 (its reference implementation).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        // The streams are its sequence: stream 1 of 0 is its second output.
        assert_eq!(derive(0, 1), 0x6E78_9E6A_A1B9_65F4);
    }
}
