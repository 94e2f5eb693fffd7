//! Ranking metrics at k, per user and over users.
//!
//! For a user with relevant items T and a list L of at most k recommendations:
//! precision = hits / k; recall = hits / |T|; NDCG = DCG / IDCG with
//! DCG = Σ over hits at 0-based rank r of 1 / log2(r + 2) and IDCG the DCG of
//! min(k, |T|) hits; average precision = Σ over hits of the precision at that rank,
//! over min(k, |T|); hit rate = 1 if any hit. Each is averaged over the users
//! evaluated. Coverage is the share of the catalogue recommended to anyone;
//! novelty the mean self-information -log2(p) of the recommended items, p being the
//! share of users who showed interest in the item (at least one user).

/// One user's scores.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UserScores {
    /// Hits over k.
    pub precision: f64,
    /// Hits over relevant items.
    pub recall: f64,
    /// Normalised discounted cumulative gain.
    pub ndcg: f64,
    /// Average precision.
    pub average_precision: f64,
    /// 1 with a hit, else 0.
    pub hit: f64,
}

/// Scores `recommended` (best first) against `relevant` (ascending, not empty).
pub fn score_user(recommended: &[u32], relevant: &[u32], k: usize) -> UserScores {
    if relevant.is_empty() || k == 0 {
        return UserScores::default();
    }
    let (mut hits, mut dcg, mut ap) = (0usize, 0f64, 0f64);
    for (rank, item) in recommended.iter().take(k).enumerate() {
        if relevant.binary_search(item).is_ok() {
            hits += 1;
            dcg += 1.0 / (rank as f64 + 2.0).log2();
            ap += hits as f64 / (rank as f64 + 1.0);
        }
    }
    let ideal = k.min(relevant.len());
    let idcg: f64 = (0..ideal).map(|r| 1.0 / (r as f64 + 2.0).log2()).sum();
    UserScores {
        precision: hits as f64 / k as f64,
        recall: hits as f64 / relevant.len() as f64,
        ndcg: dcg / idcg,
        average_precision: ap / ideal as f64,
        hit: f64::from(u8::from(hits > 0)),
    }
}

/// A recommender's scores over the users evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Mean precision@k.
    pub precision: f64,
    /// Mean recall@k.
    pub recall: f64,
    /// Mean NDCG@k.
    pub ndcg: f64,
    /// MAP@k.
    pub map: f64,
    /// Share of users with a hit.
    pub hit_rate: f64,
    /// Share of the catalogue recommended to anyone.
    pub coverage: f64,
    /// Mean self-information of the recommended items, in bits.
    pub novelty: f64,
    /// Users evaluated.
    pub users: usize,
}

/// Averages per-user scores in their order (a fixed order: the same bits on any
/// thread count), with coverage and novelty of the lists.
pub fn summarise(
    per_user: &[UserScores],
    lists: &[Vec<u32>],
    item_users: &[u32],
    active_users: usize,
) -> Summary {
    let n = per_user.len().max(1) as f64;
    let mean = |f: fn(&UserScores) -> f64| per_user.iter().map(f).sum::<f64>() / n;
    let catalogue = item_users.iter().filter(|&&u| u > 0).count();
    let mut recommended = vec![false; item_users.len()];
    let (mut information, mut slots) = (0f64, 0usize);
    for list in lists {
        for &item in list {
            let users = item_users.get(item as usize).copied().unwrap_or(0).max(1);
            information -= (f64::from(users) / active_users.max(1) as f64).log2();
            slots += 1;
            if let Some(seen) = recommended.get_mut(item as usize) {
                *seen = true;
            }
        }
    }
    Summary {
        precision: mean(|s| s.precision),
        recall: mean(|s| s.recall),
        ndcg: mean(|s| s.ndcg),
        map: mean(|s| s.average_precision),
        hit_rate: mean(|s| s.hit),
        coverage: if catalogue == 0 {
            0.0
        } else {
            recommended.iter().filter(|&&r| r).count() as f64 / catalogue as f64
        },
        novelty: if slots == 0 {
            0.0
        } else {
            information / slots as f64
        },
        users: per_user.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        // Relevant {2, 5, 9}; recommended 5, 1, 9, 7 at k = 4: hits at ranks 0 and 2.
        let s = score_user(&[5, 1, 9, 7], &[2, 5, 9], 4);
        close(s.precision, 2.0 / 4.0);
        close(s.recall, 2.0 / 3.0);
        // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3) + 1/log2(4).
        close(s.ndcg, 1.5 / (1.0 + 1.0 / 3f64.log2() + 0.5));
        // AP = (1/1 + 2/3) / min(4, 3).
        close(s.average_precision, (1.0 + 2.0 / 3.0) / 3.0);
        close(s.hit, 1.0);
        // Only the first k count: at k = 1 one hit of one.
        let s = score_user(&[5, 1, 9, 7], &[2, 5, 9], 1);
        close(s.precision, 1.0);
        close(s.ndcg, 1.0);
        close(s.average_precision, 1.0);
        let miss = score_user(&[1, 7], &[2], 2);
        assert_eq!(
            miss,
            UserScores {
                ..UserScores::default()
            }
        );
    }

    #[test]
    fn summary_averages_and_measures_the_lists() {
        let a = score_user(&[0, 1], &[1], 2);
        let b = score_user(&[0, 2], &[3], 2);
        // Items 0..4 have 4, 2, 1, 1 users of 4; item 4 none (not in the catalogue).
        let s = summarise(&[a, b], &[vec![0, 1], vec![0, 2]], &[4, 2, 1, 1, 0], 4);
        close(s.precision, (0.5 + 0.0) / 2.0);
        close(s.recall, 0.5);
        close(s.ndcg, (1.0 / 3f64.log2()) / 2.0);
        close(s.map, 0.25);
        close(s.hit_rate, 0.5);
        close(s.coverage, 3.0 / 4.0);
        // -log2 of 4/4, 2/4, 4/4, 1/4 = 0, 1, 0, 2.
        close(s.novelty, 3.0 / 4.0);
        assert_eq!(s.users, 2);
    }
}
