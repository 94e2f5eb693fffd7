//! Parameters of the `recommend` stage, as written under `with`, and their check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use userlens_model::event_types;

use crate::error::{Result, params};
use userlens_model::time::MAX_WINDOW_DAYS as MAX_HORIZON_DAYS;

/// How much one event of a type counts towards a user's interest in an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Weight {
    /// A fixed weight per event.
    Fixed(f64),
    /// `"value"`: the event's `rating`.
    Value(String),
}

/// What a user is never recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclude {
    /// Items the user bought (every item they touched, in a log without purchases).
    Purchased,
    /// Items the user had any event on.
    Seen,
    /// Nothing.
    None,
}

/// How two items' co-occurrence becomes their similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// Dot product of BM25-weighted interest, as `implicit`'s BM25Recommender.
    Bm25,
    /// Weighted dot product over the product of norms.
    Cosine,
    /// Users of both over users of either.
    Jaccard,
    /// Users of both over the product of each one's users (SAR's lift).
    Lift,
}

/// The recommenders, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelKind {
    /// Most users overall.
    Popular,
    /// Most users in the user's persona.
    PersonaPopular,
    /// Item-item similarity from co-occurrence.
    ItemKnn,
    /// Implicit-feedback matrix factorisation (weighted ALS).
    Als,
}

impl ModelKind {
    /// Every recommender.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Popular,
        ModelKind::PersonaPopular,
        ModelKind::ItemKnn,
        ModelKind::Als,
    ];

    /// The name in pipeline files and outputs.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Popular => "popular",
            ModelKind::PersonaPopular => "persona_popular",
            ModelKind::ItemKnn => "item_knn",
            ModelKind::Als => "als",
        }
    }

    fn parse(key: &'static str, name: &str) -> Result<ModelKind> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                let hint = userlens_model::did_you_mean(name, &names)
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                params(
                    key,
                    format!(
                        "unknown recommender `{name}`{hint}; known: {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

/// Weighted ALS with a conjugate-gradient solver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlsParams {
    /// Latent factors per user and item.
    pub factors: usize,
    /// Alternating passes (users, then items).
    pub iterations: usize,
    /// L2 penalty on the factors.
    pub regularization: f64,
    /// Confidence slope: an interaction of weight w has confidence 1 + alpha * w.
    pub alpha: f64,
    /// Conjugate-gradient steps per solve (Takács et al. find 3 enough).
    pub cg_steps: usize,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 64,
            iterations: 15,
            regularization: 0.05,
            alpha: 1.0,
            cg_steps: 3,
        }
    }
}

/// Parameters of the `recommend` stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendParams {
    /// Recommendations per user and persona, and the k of the metrics.
    pub k: usize,
    /// Days before the as-of date held out to score the recommenders (1 to 3650).
    pub horizon_days: u32,
    /// Weight of each event type (`"value"`: the rating); other types count 0.
    pub weights: BTreeMap<String, Weight>,
    /// Half-life in days of an event's weight (none: no decay).
    pub half_life_days: Option<f64>,
    /// What a user is never recommended.
    pub exclude: Exclude,
    /// `auto` (the best NDCG@k on the horizon) or a recommender's name.
    pub model: String,
    /// The recommenders scored (and `auto` chooses among).
    pub models: Vec<String>,
    /// Event types whose new items in the horizon are the test items.
    pub test_events: Vec<String>,
    /// Item-item similarity of `item_knn` and `similar_items.csv`.
    pub similarity: Similarity,
    /// Neighbours kept per item by `item_knn`.
    pub neighbours: usize,
    /// Rows per item in `similar_items.csv`.
    pub similar_items: usize,
    /// The matrix factorisation.
    pub als: AlsParams,
}

impl Default for RecommendParams {
    fn default() -> Self {
        let weights = [
            (event_types::VIEW, Weight::Fixed(1.0)),
            (event_types::ADD_TO_CART, Weight::Fixed(3.0)),
            (event_types::PURCHASE, Weight::Fixed(5.0)),
            (event_types::RATING, Weight::Value("value".into())),
        ];
        RecommendParams {
            k: 10,
            horizon_days: userlens_model::DEFAULT_HORIZON_DAYS,
            weights: weights
                .into_iter()
                .map(|(k, w)| (k.to_string(), w))
                .collect(),
            half_life_days: None,
            exclude: Exclude::Purchased,
            model: "auto".into(),
            models: ModelKind::ALL
                .iter()
                .map(|m| m.name().to_string())
                .collect(),
            test_events: vec![event_types::PURCHASE.to_string()],
            similarity: Similarity::Bm25,
            neighbours: 100,
            similar_items: 10,
            als: AlsParams::default(),
        }
    }
}

/// How an event type's weight is computed, after the check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CheckedWeight {
    /// A fixed weight.
    Fixed(f32),
    /// The event's rating.
    Rating,
}

impl CheckedWeight {
    /// Whether an event of this weight can count as interest.
    pub(crate) fn can_count(self) -> bool {
        match self {
            CheckedWeight::Fixed(w) => w > 0.0,
            CheckedWeight::Rating => true,
        }
    }
}

/// [`RecommendParams`] after [`RecommendParams::check`].
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedRecommendParams {
    /// See [`RecommendParams::k`].
    pub k: usize,
    /// See [`RecommendParams::horizon_days`].
    pub horizon_days: u32,
    /// Event type -> weight, sorted by type.
    pub weights: Vec<(String, CheckedWeight)>,
    /// See [`RecommendParams::half_life_days`].
    pub half_life_days: Option<f64>,
    /// See [`RecommendParams::exclude`].
    pub exclude: Exclude,
    /// `None` for `auto`.
    pub model: Option<ModelKind>,
    /// The recommenders scored, in report order.
    pub models: Vec<ModelKind>,
    /// See [`RecommendParams::test_events`].
    pub test_events: Vec<String>,
    /// See [`RecommendParams::similarity`].
    pub similarity: Similarity,
    /// See [`RecommendParams::neighbours`].
    pub neighbours: usize,
    /// See [`RecommendParams::similar_items`].
    pub similar_items: usize,
    /// See [`RecommendParams::als`].
    pub als: AlsParams,
}

/// The most recommendations per user or persona.
const MAX_K: usize = 1000;

/// The most event types `test_events` may list: event names are few.
const MAX_TEST_EVENTS: usize = 64;

impl RecommendParams {
    /// Checks every parameter before any data is read.
    pub fn check(&self) -> Result<CheckedRecommendParams> {
        if !(1..=MAX_K).contains(&self.k) {
            return Err(params(
                "k",
                format!("must be in 1..={MAX_K}, got {}", self.k),
            ));
        }
        if !(1..=MAX_HORIZON_DAYS).contains(&self.horizon_days) {
            return Err(params(
                "horizon_days",
                format!(
                    "must be in 1..={MAX_HORIZON_DAYS}, got {}",
                    self.horizon_days
                ),
            ));
        }
        let mut weights = Vec::new();
        for (event, weight) in &self.weights {
            let checked = match weight {
                Weight::Fixed(w) if w.is_finite() && *w >= 0.0 && *w <= 1e6 => {
                    CheckedWeight::Fixed(*w as f32)
                }
                Weight::Fixed(w) => {
                    return Err(params(
                        "weights",
                        format!("the weight of `{event}` must be in 0..=1e6, got {w}"),
                    ));
                }
                Weight::Value(v) if v == "value" => CheckedWeight::Rating,
                Weight::Value(v) => {
                    return Err(params(
                        "weights",
                        format!(
                            "the weight of `{event}` must be a number or \"value\" (its rating), got \"{v}\""
                        ),
                    ));
                }
            };
            weights.push((event.clone(), checked));
        }
        if !weights.iter().any(|(_, w)| w.can_count()) {
            return Err(params(
                "weights",
                "no event type has a positive weight: nothing would count as interest",
            ));
        }
        if let Some(h) = self.half_life_days
            && !(h.is_finite() && h > 0.0)
        {
            return Err(params(
                "half_life_days",
                format!("must be a positive number of days, got {h}"),
            ));
        }
        let mut models = Vec::new();
        for name in &self.models {
            let kind = ModelKind::parse("models", name)?;
            if models.contains(&kind) {
                return Err(params("models", format!("`{name}` is listed twice")));
            }
            models.push(kind);
        }
        models.sort();
        if models.is_empty() {
            return Err(params("models", "lists no recommender"));
        }
        let model = match self.model.as_str() {
            "auto" => None,
            name => {
                let kind = ModelKind::parse("model", name)?;
                if !models.contains(&kind) {
                    return Err(params(
                        "model",
                        format!(
                            "`{name}` is not among `models` ({})",
                            self.models.join(", ")
                        ),
                    ));
                }
                Some(kind)
            }
        };
        if self.test_events.is_empty() {
            return Err(params("test_events", "lists no event type"));
        }
        if self.test_events.len() > MAX_TEST_EVENTS {
            let n = self.test_events.len();
            let why = format!("lists {n} event types, more than the {MAX_TEST_EVENTS} allowed");
            return Err(params("test_events", why));
        }
        if self.test_events.iter().any(|e| e.trim().is_empty()) {
            return Err(params("test_events", "lists a blank event type"));
        }
        if let Some(twice) = (self.test_events.iter())
            .enumerate()
            .find_map(|(i, e)| self.test_events[..i].contains(e).then_some(e))
        {
            return Err(params("test_events", format!("lists `{twice}` twice")));
        }
        if !(1..=10_000).contains(&self.neighbours) {
            return Err(params(
                "neighbours",
                format!("must be in 1..=10000, got {}", self.neighbours),
            ));
        }
        if self.similar_items > MAX_K {
            return Err(params(
                "similar_items",
                format!("must be at most {MAX_K}, got {}", self.similar_items),
            ));
        }
        let als = &self.als;
        if !(1..=1024).contains(&als.factors) {
            return Err(params(
                "als",
                format!("`factors` must be in 1..=1024, got {}", als.factors),
            ));
        }
        if !(1..=1000).contains(&als.iterations) || !(1..=100).contains(&als.cg_steps) {
            return Err(params(
                "als",
                "`iterations` must be in 1..=1000 and `cg_steps` in 1..=100",
            ));
        }
        // The factors are f32: a penalty or confidence slope past 1e6 overflows
        // their solve.
        let in_range = |v: f64| v > 0.0 && v <= 1e6;
        if !in_range(als.regularization) || !in_range(als.alpha) {
            return Err(params(
                "als",
                format!(
                    "`regularization` and `alpha` must be in (0, 1e6], got {} and {}",
                    als.regularization, als.alpha
                ),
            ));
        }
        Ok(CheckedRecommendParams {
            k: self.k,
            horizon_days: self.horizon_days,
            weights,
            half_life_days: self.half_life_days,
            exclude: self.exclude,
            model,
            models,
            test_events: self.test_events.clone(),
            similarity: self.similarity,
            neighbours: self.neighbours,
            similar_items: self.similar_items,
            als: self.als.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> std::result::Result<CheckedRecommendParams, String> {
        let params: RecommendParams = toml::from_str(text).map_err(|e| e.to_string())?;
        params.check().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_documented_shape() {
        let checked = check("").unwrap();
        assert_eq!(checked.k, 10);
        assert_eq!(checked.model, None);
        assert_eq!(checked.exclude, Exclude::Purchased);
        assert_eq!(
            checked.weights,
            vec![
                ("add_to_cart".to_string(), CheckedWeight::Fixed(3.0)),
                ("purchase".to_string(), CheckedWeight::Fixed(5.0)),
                ("rating".to_string(), CheckedWeight::Rating),
                ("view".to_string(), CheckedWeight::Fixed(1.0)),
            ]
        );
        assert_eq!(checked.models, ModelKind::ALL.to_vec());
        let set = check(
            "exclude = \"seen\"\nmodel = \"als\"\nweights = { view = 1, purchase = 4 }\nals = { factors = 8 }",
        )
        .unwrap();
        assert_eq!(set.exclude, Exclude::Seen);
        assert_eq!(set.model, Some(ModelKind::Als));
        assert_eq!(set.als.factors, 8);
        assert_eq!(set.als.iterations, 15);
    }

    #[test]
    fn refuses_bad_values_with_their_names() {
        let cases = [
            (
                "k = 0",
                "invalid recommend parameter `k`: must be in 1..=1000, got 0",
            ),
            (
                "model = \"alss\"",
                "invalid recommend parameter `model`: unknown recommender `alss` (did you mean `als`?); known: popular, persona_popular, item_knn, als",
            ),
            (
                "models = [\"popular\"]\nmodel = \"als\"",
                "invalid recommend parameter `model`: `als` is not among `models` (popular)",
            ),
            (
                "weights = { view = \"rating\" }",
                "invalid recommend parameter `weights`: the weight of `view` must be a number or \"value\" (its rating), got \"rating\"",
            ),
            (
                "weights = { view = 0 }",
                "invalid recommend parameter `weights`: no event type has a positive weight: nothing would count as interest",
            ),
            (
                "horizon_days = 427007965",
                "invalid recommend parameter `horizon_days`: must be in 1..=3650, got 427007965",
            ),
            (
                "horizon_days = 0",
                "invalid recommend parameter `horizon_days`: must be in 1..=3650, got 0",
            ),
            (
                "half_life_days = -3.0",
                "invalid recommend parameter `half_life_days`: must be a positive number of days, got -3",
            ),
            (
                "test_events = [\"purchase\", \" \"]",
                "invalid recommend parameter `test_events`: lists a blank event type",
            ),
            (
                "test_events = [\"purchase\", \"purchase\"]",
                "invalid recommend parameter `test_events`: lists `purchase` twice",
            ),
            (
                "als = { alpha = 1e30 }",
                "invalid recommend parameter `als`: `regularization` and `alpha` must be in (0, 1e6], got 0.05 and 1000000000000000000000000000000",
            ),
            (
                "als = { regularization = 0.0 }",
                "invalid recommend parameter `als`: `regularization` and `alpha` must be in (0, 1e6], got 0 and 1",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(check(text).unwrap_err(), message, "{text}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("\"e{i}\"")).collect();
        let err = check(&format!("test_events = [{}]", many.join(", "))).unwrap_err();
        assert_eq!(
            err,
            "invalid recommend parameter `test_events`: lists 65 event types, more than the 64 allowed"
        );
        let unknown = check("neighbors = 5").unwrap_err();
        assert!(unknown.contains("unknown field `neighbors`"), "{unknown}");
    }
}
