//! A minimal Parquet writer for tests: one row group, one uncompressed PLAIN data page
//! per column, every column required (no nulls), no Arrow schema in the footer.
//!
//! Written by hand because the polars of this build cannot make a decimal column (it
//! has no `dtype-decimal`, which is the point: the reader must cope without it), and
//! turning the feature on for the tests would hide what they test. Also used by the
//! root crate's `tests/ingest_safety.rs`.
#![allow(dead_code)]

/// A column of a test file.
pub struct Column {
    name: String,
    /// Parquet physical type: 2 INT64, 6 BYTE_ARRAY.
    physical: i32,
    /// Converted type and, for decimals, scale and precision.
    converted: Option<(i32, i32, i32)>,
    rows: usize,
    data: Vec<u8>,
}

impl Column {
    /// UTF-8 text.
    pub fn text(name: &str, values: &[&str]) -> Column {
        let mut data = Vec::new();
        for value in values {
            data.extend_from_slice(&(value.len() as u32).to_le_bytes());
            data.extend_from_slice(value.as_bytes());
        }
        Column {
            name: name.into(),
            physical: 6,
            converted: Some((0, 0, 0)),
            rows: values.len(),
            data,
        }
    }

    /// A decimal of `precision` digits, `scale` of them after the point, stored as
    /// INT64 `unscaled` values (1234 with scale 2 is 12.34).
    pub fn decimal(name: &str, unscaled: &[i64], precision: i32, scale: i32) -> Column {
        Column {
            name: name.into(),
            physical: 2,
            converted: Some((5, scale, precision)),
            rows: unscaled.len(),
            data: unscaled.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// The bytes of a Parquet file holding `columns` (all of the same length).
pub fn file(columns: &[Column]) -> Vec<u8> {
    let rows = columns.first().map_or(0, |c| c.rows);
    let mut out = b"PAR1".to_vec();
    let mut chunks = Vec::new();
    for column in columns {
        assert_eq!(column.rows, rows, "columns of one length");
        let offset = out.len() as i64;
        let mut header = Thrift::default();
        header.i32(1, 0); // DATA_PAGE
        header.i32(2, column.data.len() as i32);
        header.i32(3, column.data.len() as i32);
        header.begin_struct(5); // DataPageHeader
        header.i32(1, rows as i32);
        header.i32(2, 0); // PLAIN
        header.i32(3, 3); // RLE
        header.i32(4, 3);
        header.end_struct();
        header.stop();
        out.extend_from_slice(&header.out);
        out.extend_from_slice(&column.data);
        let size = (header.out.len() + column.data.len()) as i64;
        chunks.push((offset, size));
    }
    let mut meta = Thrift::default();
    meta.i32(1, 1); // version
    meta.list(2, STRUCT, columns.len() + 1);
    meta.begin_element();
    meta.binary(4, b"schema");
    meta.i32(5, columns.len() as i32);
    meta.end_struct();
    for column in columns {
        meta.begin_element();
        meta.i32(1, column.physical);
        meta.i32(3, 0); // REQUIRED
        meta.binary(4, column.name.as_bytes());
        if let Some((converted, scale, precision)) = column.converted {
            meta.i32(6, converted);
            if converted == 5 {
                meta.i32(7, scale);
                meta.i32(8, precision);
            }
        }
        meta.end_struct();
    }
    meta.i64(3, rows as i64);
    meta.list(4, STRUCT, 1);
    meta.begin_element(); // RowGroup
    meta.list(1, STRUCT, columns.len());
    for (column, &(offset, size)) in columns.iter().zip(&chunks) {
        meta.begin_element(); // ColumnChunk
        meta.i64(2, offset);
        meta.begin_struct(3); // ColumnMetaData
        meta.i32(1, column.physical);
        meta.list(2, I32, 2);
        meta.varint(zigzag(0)); // PLAIN
        meta.varint(zigzag(3)); // RLE
        meta.list(3, BINARY, 1);
        meta.varint(column.name.len() as u64);
        meta.out.extend_from_slice(column.name.as_bytes());
        meta.i32(4, 0); // UNCOMPRESSED
        meta.i64(5, rows as i64);
        meta.i64(6, size);
        meta.i64(7, size);
        meta.i64(9, offset);
        meta.end_struct();
        meta.end_struct();
    }
    let total: i64 = chunks.iter().map(|c| c.1).sum();
    meta.i64(2, total);
    meta.i64(3, rows as i64);
    meta.end_struct();
    meta.stop();
    out.extend_from_slice(&meta.out);
    out.extend_from_slice(&(meta.out.len() as u32).to_le_bytes());
    out.extend_from_slice(b"PAR1");
    out
}

const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const STRUCT: u8 = 12;

/// Thrift's compact protocol, as far as the Parquet footer needs it.
struct Thrift {
    out: Vec<u8>,
    /// The last field id written, per struct being written.
    last: Vec<i16>,
}

impl Default for Thrift {
    fn default() -> Thrift {
        Thrift {
            out: Vec::new(),
            last: vec![0],
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

impl Thrift {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn field(&mut self, id: i16, kind: u8) {
        let last = self.last.last_mut().expect("in a struct");
        let delta = id - *last;
        *last = id;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | kind);
        } else {
            self.out.push(kind);
            self.varint(zigzag(i64::from(id)));
        }
    }

    fn i32(&mut self, id: i16, v: i32) {
        self.field(id, I32);
        self.varint(zigzag(i64::from(v)));
    }

    fn i64(&mut self, id: i16, v: i64) {
        self.field(id, I64);
        self.varint(zigzag(v));
    }

    fn binary(&mut self, id: i16, bytes: &[u8]) {
        self.field(id, BINARY);
        self.varint(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }

    fn list(&mut self, id: i16, kind: u8, len: usize) {
        self.field(id, LIST);
        if len < 15 {
            self.out.push(((len as u8) << 4) | kind);
        } else {
            self.out.push(0xf0 | kind);
            self.varint(len as u64);
        }
    }

    fn begin_struct(&mut self, id: i16) {
        self.field(id, STRUCT);
        self.last.push(0);
    }

    /// A struct that is an element of a list (no field header).
    fn begin_element(&mut self) {
        self.last.push(0);
    }

    fn end_struct(&mut self) {
        self.out.push(0);
        self.last.pop();
    }

    fn stop(&mut self) {
        self.out.push(0);
    }
}
