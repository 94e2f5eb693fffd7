//! The cuts every output is also given by: all users, each persona, each RFM segment.

use polars::prelude::*;
use userlens_model::columns::{PERSONA_ID, USER_ID};

use crate::error::{Error, Result, polars_err};

pub use userlens_model::groups::{ALL, PERSONA, SEGMENT};

/// One cut of the users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// [`ALL`], [`PERSONA`] or [`SEGMENT`].
    pub kind: &'static str,
    /// `all`, the persona id or the segment name.
    pub value: String,
}

/// Users' personas and segments, looked up by user id.
#[derive(Debug, Default)]
pub struct Directory {
    index: foldhash::HashMap<String, u32>,
    /// Group index of each user's persona.
    persona: Vec<Option<u32>>,
    /// Group index of each user's segment.
    segment: Vec<Option<u32>>,
    /// Every group; the first is [`ALL`].
    pub groups: Vec<Group>,
}

/// A user's groups: all, then persona and segment when known.
pub type Memberships = [Option<u32>; 3];

impl Directory {
    /// The directory of `assignments` (`user_id, persona_id`) and `segments`
    /// (`user_id, segment`), either optional.
    pub fn new(assignments: Option<&DataFrame>, segments: Option<&DataFrame>) -> Result<Directory> {
        let mut dir = Directory {
            groups: vec![Group {
                kind: ALL,
                value: ALL.to_string(),
            }],
            ..Directory::default()
        };
        if let Some(df) = assignments {
            let pairs = pairs(df, "assignments", PERSONA_ID, DataType::UInt32)?;
            let ids = pairs
                .column(PERSONA_ID)
                .map_err(polars_err("read persona ids"))?;
            let mut personas: Vec<u32> = ids
                .u32()
                .map_err(polars_err("read persona ids"))?
                .iter()
                .flatten()
                .collect();
            personas.sort_unstable();
            personas.dedup();
            let first = dir.groups.len() as u32;
            dir.groups.extend(personas.iter().map(|p| Group {
                kind: PERSONA,
                value: p.to_string(),
            }));
            let users = pairs.column(USER_ID).and_then(|c| c.str().cloned());
            let users = users.map_err(polars_err("read user ids"))?;
            let ids = ids.u32().map_err(polars_err("read persona ids"))?;
            for (user, persona) in users.iter().zip(ids.iter()) {
                if let (Some(user), Some(persona)) = (user, persona) {
                    let group = personas
                        .binary_search(&persona)
                        .ok()
                        .map(|i| first + i as u32);
                    let at = dir.user(user);
                    dir.persona[at] = group;
                }
            }
        }
        if let Some(df) = segments {
            let pairs = pairs(df, "segments", SEGMENT, DataType::String)?;
            let names = pairs.column(SEGMENT).and_then(|c| c.str().cloned());
            let names = names.map_err(polars_err("read segments"))?;
            let mut distinct: Vec<&str> = names.iter().flatten().collect();
            distinct.sort_unstable();
            distinct.dedup();
            let first = dir.groups.len() as u32;
            dir.groups.extend(distinct.iter().map(|s| Group {
                kind: SEGMENT,
                value: s.to_string(),
            }));
            let users = pairs.column(USER_ID).and_then(|c| c.str().cloned());
            let users = users.map_err(polars_err("read user ids"))?;
            for (user, name) in users.iter().zip(names.iter()) {
                if let (Some(user), Some(name)) = (user, name) {
                    let group = distinct.binary_search(&name).ok().map(|i| first + i as u32);
                    let at = dir.user(user);
                    dir.segment[at] = group;
                }
            }
        }
        Ok(dir)
    }

    fn user(&mut self, id: &str) -> usize {
        let next = self.persona.len() as u32;
        let at = *self.index.entry(id.to_string()).or_insert(next) as usize;
        if at == self.persona.len() {
            self.persona.push(None);
            self.segment.push(None);
        }
        at
    }

    /// The groups of user `id`.
    pub fn memberships(&self, id: &str) -> Memberships {
        match self.index.get(id) {
            Some(&at) => [
                Some(0),
                self.persona.get(at as usize).copied().flatten(),
                self.segment.get(at as usize).copied().flatten(),
            ],
            None => [Some(0), None, None],
        }
    }
}

/// `user_id` and one more column of `df`, cast, with a clear error when absent.
fn pairs(
    df: &DataFrame,
    table: &'static str,
    column: &'static str,
    dtype: DataType,
) -> Result<DataFrame> {
    for wanted in [USER_ID, column] {
        if df.column(wanted).is_err() {
            return Err(Error::MissingColumn {
                table,
                column: wanted,
            });
        }
    }
    df.clone()
        .lazy()
        .select([col(USER_ID).cast(DataType::String), col(column).cast(dtype)])
        .collect()
        .map_err(polars_err("read the user groups"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_belong_to_all_their_persona_and_their_segment() {
        let assignments = df!(USER_ID => ["a", "b", "c"], PERSONA_ID => [2u32, 0, 2]).unwrap();
        let segments = df!(USER_ID => ["c", "a"], SEGMENT => ["lost", "champions"]).unwrap();
        let dir = Directory::new(Some(&assignments), Some(&segments)).unwrap();
        let values: Vec<_> = dir.groups.iter().map(|g| g.value.as_str()).collect();
        assert_eq!(values, ["all", "0", "2", "champions", "lost"]);
        assert_eq!(dir.memberships("a"), [Some(0), Some(2), Some(3)]);
        assert_eq!(dir.memberships("b"), [Some(0), Some(1), None]);
        assert_eq!(dir.memberships("zz"), [Some(0), None, None]);
        let bad = df!(USER_ID => ["a"]).unwrap();
        let err = Directory::new(Some(&bad), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the `assignments` table has no `persona_id` column"
        );
    }
}
