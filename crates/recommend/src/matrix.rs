//! Sparse user-item matrices (CSR) and the interactions they are built from.

use crate::events::{End, Log, Pair};
use crate::params::Exclude;
use userlens_model::event_types;

/// A sparse matrix in compressed rows; column indices ascend within a row.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Csr {
    pub cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    pub fn rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Row `r`'s columns and values (empty out of range).
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        match (self.indptr.get(r), self.indptr.get(r + 1)) {
            (Some(&a), Some(&b)) => (&self.indices[a..b], &self.values[a..b]),
            _ => (&[], &[]),
        }
    }

    /// The transpose, rows ascending within each of its rows.
    pub fn transpose(&self) -> Csr {
        self.transpose_with(&self.values)
    }

    /// [`Csr::transpose`] of the matrix with `values` (one per entry) in place of its own.
    pub fn transpose_with(&self, values: &[f32]) -> Csr {
        let mut counts = vec![0usize; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..self.cols {
            counts[i + 1] += counts[i];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0u32; self.indices.len()];
        let mut transposed = vec![0f32; values.len()];
        for r in 0..self.rows() {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            for (&c, &v) in self.indices[a..b].iter().zip(&values[a..b]) {
                let at = &mut next[c as usize];
                indices[*at] = r as u32;
                transposed[*at] = v;
                *at += 1;
            }
        }
        Csr {
            cols: self.rows(),
            indptr,
            indices,
            values: transposed,
        }
    }
}

/// [`Interactions`] made a pair at a time, the pairs in (user, item) order.
pub(crate) struct Builder {
    end: End,
    users: usize,
    all: Csr,
    bought: Vec<bool>,
    strongest: Vec<u16>,
    explained: bool,
    latest: Option<i64>,
    has_purchases: bool,
}

impl Builder {
    /// Room for `entries` pairs touched before `end` of `log`'s users and items.
    pub fn new(log: &Log, end: End, entries: usize) -> Builder {
        // Sized exactly: at 100 million events these are the stage's largest vectors.
        let users = log.users.len();
        let explained = end == End::AsOf;
        let mut indptr = Vec::with_capacity(users + 1);
        indptr.push(0);
        Builder {
            end,
            users,
            all: Csr {
                cols: log.items.len(),
                indptr,
                indices: Vec::with_capacity(entries),
                values: Vec::with_capacity(entries),
            },
            bought: Vec::with_capacity(entries),
            strongest: Vec::with_capacity(if explained { entries } else { 0 }),
            explained,
            latest: log.latest(end),
            has_purchases: log.kinds.iter().any(|k| k == event_types::PURCHASE),
        }
    }

    /// Adds `pair` if it was touched before the end.
    pub fn push(&mut self, pair: &Pair) {
        let touch = pair.at(self.end);
        if !touch.touched {
            return;
        }
        self.close_rows(pair.user as usize);
        self.all.indices.push(pair.item);
        self.all.values.push(touch.interest);
        self.bought.push(touch.bought);
        if self.explained {
            self.strongest.push(pair.strongest());
        }
    }

    /// Ends every row before `row`.
    fn close_rows(&mut self, row: usize) {
        while self.all.indptr.len() <= row {
            self.all.indptr.push(self.all.indices.len());
        }
    }

    pub fn finish(mut self) -> Interactions {
        self.close_rows(self.users);
        Interactions::of(self)
    }
}

/// What each user did with each item before a time.
#[derive(Debug, Clone)]
pub(crate) struct Interactions {
    /// Every (user, item) with an event: its interest (decayed weights, maybe 0).
    pub all: Csr,
    /// Per entry of `all`: bought (a purchase event).
    pub bought: Vec<bool>,
    /// Per entry of `all`: the kind of its weightiest event, for explanations, which
    /// are made at the as-of date only (empty for interactions at the cutoff).
    pub strongest: Vec<u16>,
    /// The entries of `all` with a positive interest, when some are not: `None`
    /// when they all are (the usual case), so that `all` is not held twice.
    positive: Option<Csr>,
    /// Users with a positive interest in each item.
    pub item_users: Vec<u32>,
    /// Users with any positive interest.
    pub active_users: usize,
    /// The latest event time used.
    pub latest: Option<i64>,
    /// Whether the log has purchases at all (else "purchased" means "seen").
    pub has_purchases: bool,
}

impl Interactions {
    /// What each user did with each item before `end`.
    pub fn build(log: &Log, end: End) -> Interactions {
        let entries = log.pairs.iter().filter(|p| p.at(end).touched).count();
        let mut builder = Builder::new(log, end, entries);
        log.pairs.iter().for_each(|pair| builder.push(pair));
        builder.finish()
    }

    /// The interactions a builder has every pair of.
    fn of(built: Builder) -> Interactions {
        let Builder {
            all,
            bought,
            strongest,
            latest,
            has_purchases,
            ..
        } = built;
        let (users, items) = (all.rows(), all.cols);
        let positive = all.values.iter().any(|&v| v.is_nan() || v <= 0.0).then(|| {
            let kept = all.values.iter().filter(|&&v| v > 0.0).count();
            let mut train = Csr {
                cols: items,
                indptr: Vec::with_capacity(users + 1),
                indices: Vec::with_capacity(kept),
                values: Vec::with_capacity(kept),
            };
            train.indptr.push(0);
            for u in 0..users {
                let (cols, vals) = all.row(u);
                for (&c, &v) in cols.iter().zip(vals) {
                    if v > 0.0 {
                        train.indices.push(c);
                        train.values.push(v);
                    }
                }
                train.indptr.push(train.indices.len());
            }
            train
        });
        let mut inter = Interactions {
            all,
            bought,
            strongest,
            positive,
            item_users: vec![0u32; items],
            active_users: 0,
            latest,
            has_purchases,
        };
        let train = inter.positive.as_ref().unwrap_or(&inter.all);
        for u in 0..train.rows() {
            let (cols, _) = train.row(u);
            for &c in cols {
                inter.item_users[c as usize] += 1;
            }
            inter.active_users += usize::from(!cols.is_empty());
        }
        inter
    }

    /// The entries of `all` with a positive interest: what the models learn from.
    pub fn positive(&self) -> &Csr {
        self.positive.as_ref().unwrap_or(&self.all)
    }

    /// Items `user` must not be recommended, ascending.
    pub fn excluded(&self, user: usize, exclude: Exclude) -> Vec<u32> {
        let (a, b) = (self.all.indptr[user], self.all.indptr[user + 1]);
        match exclude {
            Exclude::None => Vec::new(),
            Exclude::Seen => self.all.indices[a..b].to_vec(),
            Exclude::Purchased if !self.has_purchases => self.all.indices[a..b].to_vec(),
            Exclude::Purchased => (a..b)
                .filter(|&e| self.bought[e])
                .map(|e| self.all.indices[e])
                .collect(),
        }
    }

    /// Entry index of (user, item) in `all`, if the user touched it.
    pub fn entry(&self, user: usize, item: u32) -> Option<usize> {
        let (a, b) = (self.all.indptr[user], self.all.indptr[user + 1]);
        self.all.indices[a..b]
            .binary_search(&item)
            .ok()
            .map(|i| a + i)
    }
}
