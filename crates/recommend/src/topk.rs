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
}

impl TopK {
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    pub fn offer(&mut self, item: u32, score: f32) {
        let candidate = Scored { item, score };
        if self.heap.len() < self.k {
            self.heap.push(std::cmp::Reverse(candidate));
        } else if let Some(worst) = self.heap.peek()
            && candidate > worst.0
        {
            self.heap.pop();
            self.heap.push(std::cmp::Reverse(candidate));
        }
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
}
