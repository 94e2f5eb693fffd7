//! Popularity, overall and per persona: the baseline every recommender must beat.

use crate::matrix::Interactions;

/// Items in order of popularity among a group of users.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ranking {
    /// Items with at least one user, most popular first (ties: more total
    /// interest, then the lower index).
    pub order: Vec<u32>,
    /// Each item's share of the group's users who showed interest in it.
    pub share: Vec<f32>,
    /// Each item's count of the group's users who showed interest in it.
    pub counts: Vec<u32>,
    /// Users in the group.
    pub users: usize,
}

impl Ranking {
    /// Popularity among the users for whom `member` is true.
    pub fn among(inter: &Interactions, member: impl Fn(usize) -> bool) -> Ranking {
        let items = inter.positive().cols;
        let mut counts = vec![0u32; items];
        let mut total = vec![0f64; items];
        let mut users = 0;
        for u in 0..inter.positive().rows() {
            if !member(u) {
                continue;
            }
            let (cols, vals) = inter.positive().row(u);
            users += usize::from(!cols.is_empty());
            for (&c, &v) in cols.iter().zip(vals) {
                counts[c as usize] += 1;
                total[c as usize] += f64::from(v);
            }
        }
        let mut order: Vec<u32> = (0..items as u32)
            .filter(|&i| counts[i as usize] > 0)
            .collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            counts[b]
                .cmp(&counts[a])
                .then(total[b].total_cmp(&total[a]))
                .then(a.cmp(&b))
        });
        let share = counts
            .iter()
            .map(|&c| {
                if users == 0 {
                    0.0
                } else {
                    c as f32 / users as f32
                }
            })
            .collect();
        Ranking {
            order,
            share,
            counts,
            users,
        }
    }

    /// The first `k` items not in `skip` (ascending) nor in `taken`.
    pub fn top(&self, k: usize, skip: &[u32], taken: &[u32]) -> Vec<u32> {
        self.order
            .iter()
            .copied()
            .filter(|i| skip.binary_search(i).is_err() && !taken.contains(i))
            .take(k)
            .collect()
    }
}
