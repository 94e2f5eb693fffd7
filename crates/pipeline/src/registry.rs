//! The registry of stage kinds: each kind's name, tables and parameter check, before
//! its parameters are known.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::stage::{CheckedOf, CheckedStage, Declared, Invalid, Stage};

/// Why a stage's parameters were refused.
pub(crate) enum CheckFailure {
    /// serde refused the `with` table: its message and the key path it was at.
    Shape { message: String, path: Vec<String> },
    /// The stage's own check refused it.
    Invalid(Invalid),
}

/// A registry entry: a stage kind, before its parameters are known.
pub(crate) trait Kind: Send + Sync {
    fn uses(&self) -> &'static str;
    fn provides(&self) -> &'static [&'static str];
    /// See [`Stage::defaults`].
    fn defaults(&self) -> Option<toml::Table>;
    /// Deserialises and checks `with`.
    fn check(
        &self,
        with: toml::Value,
        declared: &Declared,
    ) -> Result<Arc<dyn CheckedStage>, CheckFailure>;
}

struct KindOf<S>(PhantomData<fn() -> S>);

impl<S: Stage> Kind for KindOf<S> {
    fn uses(&self) -> &'static str {
        S::USES
    }
    fn provides(&self) -> &'static [&'static str] {
        S::PROVIDES
    }
    fn defaults(&self) -> Option<toml::Table> {
        S::defaults()
    }
    fn check(
        &self,
        with: toml::Value,
        declared: &Declared,
    ) -> Result<Arc<dyn CheckedStage>, CheckFailure> {
        let params = serde_path_to_error::deserialize::<_, S::Params>(with).map_err(|e| {
            CheckFailure::Shape {
                message: e.inner().message().trim().to_string(),
                path: e.path().iter().map(|segment| segment.to_string()).collect(),
            }
        })?;
        let checked = S::check(params, declared).map_err(CheckFailure::Invalid)?;
        Ok(Arc::new(CheckedOf::<S>(checked)))
    }
}

/// The stage kinds a pipeline may use.
#[derive(Clone)]
pub struct Registry {
    kinds: Vec<Arc<dyn Kind>>,
}

impl Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// No kinds at all.
    pub fn empty() -> Registry {
        Registry { kinds: Vec::new() }
    }

    /// The kinds userlens ships (see `stages/`).
    pub fn builtin() -> Registry {
        crate::stages::register(Registry::empty())
    }

    /// Adds the kind `S` (replacing a kind of the same name).
    pub fn with<S: Stage>(mut self) -> Registry {
        self.kinds.retain(|k| k.uses() != S::USES);
        self.kinds.push(Arc::new(KindOf::<S>(PhantomData)));
        self
    }

    /// The `uses` names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.iter().map(|k| k.uses()).collect()
    }

    pub(crate) fn kind(&self, uses: &str) -> Option<&dyn Kind> {
        self.kinds
            .iter()
            .find(|k| k.uses() == uses)
            .map(|k| k.as_ref())
    }

    /// The kinds that provide `table`.
    pub(crate) fn providers(&self, table: &str) -> Vec<&'static str> {
        self.kinds
            .iter()
            .filter(|k| k.provides().contains(&table))
            .map(|k| k.uses())
            .collect()
    }
}
