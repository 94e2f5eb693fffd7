//! The k best of many candidates with a bounded heap.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scored item; greater is better (higher score, then the lower index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scored {
    pub item: u32,
    pub score: f32,
}

impl Eq for Scored {}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.item.cmp(&self.item))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Keeps the `k` best of the candidates it is offered.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<std::cmp::Reverse<Scored>>,
    /// The worst kept score once `k` are kept: a lower one is refused on sight.
    floor: f32,
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
            floor: f32::NEG_INFINITY,
        }
    }

    #[inline]
    pub fn offer(&mut self, item: u32, score: f32) {
        if self.refuses(score) {
            return;
        }
        self.consider(Scored { item, score });
    }

    /// Whether [`TopK::offer`] refuses `score` on sight (full, and lower than the
    /// worst kept), as most candidates are: a caller checks this before anything
    /// costlier about a candidate.
    #[inline]
    pub fn refuses(&self, score: f32) -> bool {
        self.heap.len() == self.k && score.total_cmp(&self.floor).is_lt()
    }

    fn consider(&mut self, candidate: Scored) {
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(candidate));
        } else if let Some(worst) = self.heap.peek()
            && candidate > worst.0
        {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(candidate));
        }
        if self.heap.len() == self.k
            && let Some(worst) = self.heap.peek()
        {
            self.floor = worst.0.score;
        }
    }

    /// The worst kept score once `k` are kept.
    pub fn full_floor(&self) -> Option<f32> {
        (self.k > 0 && self.heap.len() == self.k).then_some(self.floor)
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> = self.heap.into_iter().map(|r| r.0).collect();
        out.sort_unstable_by(|a, b| b.cmp(a));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_and_breaks_ties_by_index() {
        let mut top = TopK::new(3);
        for (item, score) in [(5, 1.0), (1, 3.0), (2, 3.0), (9, 0.5), (0, 2.0), (7, 3.0)] {
            top.offer(item, score);
        }
        let kept: Vec<(u32, f32)> = top
            .into_sorted()
            .iter()
            .map(|s| (s.item, s.score))
            .collect();
        assert_eq!(kept, [(1, 3.0), (2, 3.0), (7, 3.0)]);
    }

    #[test]
    fn refuses_only_what_the_k_best_leave_out() {
        // Ties everywhere, later candidates with lower (better) indices.
        let candidates: Vec<Scored> = (0..200u32)
            .map(|i| Scored {
                item: 1000 - i,
                score: ((i * 37) % 23) as f32 - 5.0,
            })
            .collect();
        for k in [1, 3, 10] {
            let mut top = TopK::new(k);
            let mut refused = 0;
            for c in &candidates {
                if top.refuses(c.score) {
                    refused += 1;
                } else {
                    top.offer(c.item, c.score);
                }
            }
            let mut sorted = candidates.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            sorted.truncate(k);
            assert!(refused > candidates.len() / 2, "k {k}: {refused} refused");
            assert_eq!(top.into_sorted(), sorted, "k {k}");
        }
    }

    #[test]
    fn keeps_what_a_full_sort_keeps_in_any_order_of_offers() {
        // Few distinct scores, so that ties are everywhere; a NaN and infinities too.
        let values = [
            0.5,
            -1.0,
            2.0,
            0.5,
            f32::NAN,
            f32::INFINITY,
            2.0,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
        ];
        let candidates: Vec<Scored> = (0..40u32)
            .map(|i| Scored {
                item: (i * 17) % 40,
                score: values[(i as usize * 7) % values.len()],
            })
            .collect();
        for k in 0..=candidates.len() + 1 {
            for start in [0, 13, 29] {
                let mut top = TopK::new(k);
                for c in candidates.iter().cycle().skip(start).take(candidates.len()) {
                    top.offer(c.item, c.score);
                }
                let mut sorted = candidates.clone();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                sorted.truncate(k);
                let bits = |v: &[Scored]| -> Vec<(u32, u32)> {
                    v.iter().map(|s| (s.item, s.score.to_bits())).collect()
                };
                assert_eq!(
                    bits(&top.into_sorted()),
                    bits(&sorted),
                    "k {k}, from {start}"
                );
            }
        }
    }
}
