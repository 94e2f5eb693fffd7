//! The names behind a task's ids: strings interned, dictionary codes looked up.

use either::Either;
use foldhash::{HashMap, HashMapExt};
use polars::prelude::*;

use crate::error::{Error, Result};

/// Interns strings, handing out indices in first-seen order.
#[derive(Default)]
pub(super) struct Interner {
    index: HashMap<String, u32>,
    pub names: Vec<String>,
    /// The last index handed out: events come grouped by user, so most lookups of
    /// a user are the previous one's, found without hashing.
    last: u32,
}

impl Interner {
    pub fn new() -> Interner {
        Interner {
            index: HashMap::new(),
            names: Vec::new(),
            last: 0,
        }
    }

    pub fn get(&mut self, name: &str) -> u32 {
        if self
            .names
            .get(self.last as usize)
            .is_some_and(|n| n == name)
        {
            return self.last;
        }
        if let Some(&i) = self.index.get(name) {
            self.last = i;
            return i;
        }
        let i = self.names.len() as u32;
        self.last = i;
        self.index.insert(name.to_string(), i);
        self.names.push(name.to_string());
        i
    }

    /// The id of a text: a string's by hashing it, a code's through `codes`.
    pub fn id(&mut self, text: Text<'_>, codes: &mut CodeIds<'_>) -> Result<u32> {
        let code = match text {
            Text::Name(name) => return Ok(self.get(name)),
            Text::Code(code) => code as usize,
        };
        if let Some(&id) = codes.ids.get(code)
            && id != UNSEEN
        {
            return Ok(id);
        }
        let name = codes
            .codes
            .and_then(|c| c.get_mapping().cat_to_str(code as u32))
            .ok_or_else(|| Error::Events(format!("dictionary code {code} has no value")))?;
        let id = self.get(name);
        if codes.ids.len() <= code {
            codes.ids.resize(code + 1, UNSEEN);
        }
        codes.ids[code] = id;
        Ok(id)
    }

    /// The names sorted, and each first-seen index's place among them.
    pub fn sorted(self) -> (Vec<String>, Vec<u32>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut place = vec![0u32; order.len()];
        for (rank, &i) in order.iter().enumerate() {
            place[i as usize] = rank as u32;
        }
        let mut names = self.names;
        let sorted = order
            .iter()
            .map(|&i| std::mem::take(&mut names[i as usize]))
            .collect();
        (sorted, place)
    }
}

/// A task's text column: dictionary codes, as the ingest keeps them, or strings.
pub(super) enum Texts {
    Codes(Categorical32Chunked),
    Strings(StringChunked),
}

/// One value of [`Texts`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Text<'a> {
    Code(u32),
    Name(&'a str),
}

impl Texts {
    pub fn of(column: &Column) -> Result<Texts> {
        if let Ok(codes) = column.cat32() {
            return Ok(Texts::Codes(codes.clone()));
        }
        let text = column.cast(&DataType::String)?;
        Ok(Texts::Strings(text.str()?.clone()))
    }

    pub fn values(&self) -> impl Iterator<Item = Option<Text<'_>>> {
        match self {
            Texts::Codes(codes) => Either::Left(codes.physical().iter().map(|c| c.map(Text::Code))),
            Texts::Strings(names) => Either::Right(names.iter().map(|n| n.map(Text::Name))),
        }
    }

    /// A table from this column's codes to a task's ids, empty to begin with.
    pub fn code_ids(&self) -> CodeIds<'_> {
        CodeIds {
            codes: match self {
                Texts::Codes(codes) => Some(codes),
                Texts::Strings(_) => None,
            },
            ids: Vec::new(),
        }
    }
}

/// Each dictionary code's id in a task's [`Interner`], filled in as codes are met:
/// a code's name is looked up and hashed once per task, not once per row.
pub(super) struct CodeIds<'a> {
    codes: Option<&'a Categorical32Chunked>,
    ids: Vec<u32>,
}

/// No id yet in [`CodeIds::ids`].
const UNSEEN: u32 = u32::MAX;
