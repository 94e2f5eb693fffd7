//! A log's pairs while the matrices are built from them: in memory, or for a log
//! read out of core in an unnamed temporary file, so that the pairs (the stage's
//! largest vector) are not held beside the matrices made from them.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use super::pairs::{End, PAIR_BYTES, Pair};
use crate::error::{Error, Result};

/// Pairs handed to the callback of [`Stored::for_each_block`] at a time (tests cut
/// the file into blocks of seven).
const BLOCK_PAIRS: usize = if cfg!(test) { 7 } else { 1 << 16 };

/// The pairs of a [`super::Log`], sorted by user, then item.
pub(crate) struct Stored {
    /// Per [`End`]: the pairs touched before it.
    touched: [usize; 2],
    place: Place,
}

enum Place {
    Memory(Vec<Pair>),
    /// Removed by the system when closed, however the process ends.
    File {
        file: std::fs::File,
        len: usize,
    },
}

impl Stored {
    /// The pairs kept in memory.
    pub fn memory(pairs: Vec<Pair>) -> Stored {
        Stored {
            touched: touched(&pairs),
            place: Place::Memory(pairs),
        }
    }

    /// The pairs written to a temporary file (in the system's temporary folder,
    /// `TMPDIR`) and let go.
    pub fn spill(pairs: Vec<Pair>) -> Result<Stored> {
        let touched = touched(&pairs);
        let file = tempfile::tempfile().map_err(Error::Spill)?;
        let mut out = BufWriter::new(&file);
        for pair in &pairs {
            out.write_all(&pair.to_bytes()).map_err(Error::Spill)?;
        }
        out.flush().map_err(Error::Spill)?;
        drop(out);
        Ok(Stored {
            touched,
            place: Place::File {
                file,
                len: pairs.len(),
            },
        })
    }

    /// The pairs touched before `end`.
    pub fn touched(&self, end: End) -> usize {
        self.touched[end as usize]
    }

    /// Calls `f` on the pairs in order, a block at a time.
    pub fn for_each_block(&self, mut f: impl FnMut(&[Pair])) -> Result<()> {
        let (mut file, len) = match &self.place {
            Place::Memory(pairs) => {
                f(pairs);
                return Ok(());
            }
            Place::File { file, len } => (file, *len),
        };
        file.seek(SeekFrom::Start(0)).map_err(Error::Spill)?;
        let mut input = BufReader::new(file);
        let mut bytes = vec![0u8; BLOCK_PAIRS.min(len) * PAIR_BYTES];
        let mut block = Vec::with_capacity(BLOCK_PAIRS);
        let mut left = len;
        while left > 0 {
            let n = left.min(BLOCK_PAIRS);
            let bytes = &mut bytes[..n * PAIR_BYTES];
            input.read_exact(bytes).map_err(Error::Spill)?;
            block.clear();
            block.extend(
                bytes
                    .as_chunks::<PAIR_BYTES>()
                    .0
                    .iter()
                    .map(Pair::from_bytes),
            );
            f(&block);
            left -= n;
        }
        Ok(())
    }
}

fn touched(pairs: &[Pair]) -> [usize; 2] {
    [End::Cutoff, End::AsOf].map(|end| pairs.iter().filter(|p| p.at(end).touched).count())
}
