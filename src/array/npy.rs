//! The NumPy `.npy` header: read strictly and within bounds, so a file's claims (element type,
//! shape, size) can be checked against the file before anything is allocated for its data.
//!
//! Format (NumPy's `format.py`): the magic `\x93NUMPY`, a major and a minor version byte, the
//! header length (2 bytes little-endian for version 1, 4 for versions 2 and 3), then the header:
//! a Python dict literal `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }` padded with
//! spaces and a newline so the data starts at a multiple of 64 bytes.

use std::io::Read;

/// The longest header accepted (NumPy writes under 200 bytes; a longer one is not a `.npy`
/// this library wrote, and reading it must not allocate what the file claims).
pub(crate) const MAX_HEADER: usize = 1 << 16;

/// What a `.npy` header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NpyHeader {
    /// The element type, as NumPy spells it (`<f8`, `<i4`, `|u1`, …).
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The array's shape.
    pub shape: Vec<usize>,
    /// Where the data starts in the file.
    pub data_offset: u64,
}

impl NpyHeader {
    /// The number of elements, if it fits in `usize`.
    pub fn len(&self) -> Option<usize> {
        self.shape
            .iter()
            .try_fold(1_usize, |acc, &d| acc.checked_mul(d))
    }

    /// The file size this header implies for elements of `item` bytes, if it fits in `u64`.
    pub fn file_size(&self, item: usize) -> Option<u64> {
        let bytes = (self.len()? as u64).checked_mul(item as u64)?;
        self.data_offset.checked_add(bytes)
    }
}

/// Reads and parses the header at the start of `reader`, reading at most
/// `10 + MAX_HEADER` bytes.
///
/// # Errors
/// A sentence saying what is wrong: not a `.npy` file, an unknown version, a header too long
/// or cut short, or one that does not parse.
pub(crate) fn read_header(reader: &mut impl Read) -> Result<NpyHeader, String> {
    let mut lead = [0_u8; 8];
    reader
        .read_exact(&mut lead)
        .map_err(|e| format!("too short for a .npy file ({e})"))?;
    if &lead[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (no \\x93NUMPY magic)".into());
    }
    let (len, prefix) = match lead[6] {
        1 => {
            let mut b = [0_u8; 2];
            reader
                .read_exact(&mut b)
                .map_err(|e| format!("header length cut short ({e})"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0_u8; 4];
            reader
                .read_exact(&mut b)
                .map_err(|e| format!("header length cut short ({e})"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    if len > MAX_HEADER {
        return Err(format!(
            "a .npy header of {len} bytes, above the {MAX_HEADER} this library reads"
        ));
    }
    // Read what is there (at most `len`) rather than allocate what the file claims.
    let mut text = Vec::new();
    reader
        .take(len as u64)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read the header ({e})"))?;
    if text.len() != len {
        return Err(format!(
            "header cut short: {len} bytes announced, {} there",
            text.len()
        ));
    }
    let text = std::str::from_utf8(&text).map_err(|_| "the header is not UTF-8".to_string())?;
    let mut header = parse_dict(text)?;
    header.data_offset = (prefix + len) as u64;
    Ok(header)
}

/// Parses `{'descr': ..., 'fortran_order': ..., 'shape': (...), }`.
fn parse_dict(text: &str) -> Result<NpyHeader, String> {
    let mut p = Parser { rest: text.trim() };
    p.expect('{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_spaces();
        if p.eat('}') {
            break;
        }
        let key = p.string()?;
        p.expect(':')?;
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(format!("unexpected key {other:?} in the header")),
        }
        p.skip_spaces();
        if !p.eat(',') {
            p.expect('}')?;
            break;
        }
    }
    if !p.rest.trim().is_empty() {
        return Err("text after the header's dict".into());
    }
    Ok(NpyHeader {
        descr: descr.ok_or("the header has no 'descr'")?,
        fortran_order: fortran.ok_or("the header has no 'fortran_order'")?,
        shape: shape.ok_or("the header has no 'shape'")?,
        data_offset: 0,
    })
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_spaces();
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "expected {c:?} in the header at {:?}",
                self.context()
            ))
        }
    }

    fn context(&self) -> &str {
        let end = self
            .rest
            .char_indices()
            .nth(20)
            .map_or(self.rest.len(), |(i, _)| i);
        &self.rest[..end]
    }

    /// A Python string literal in single or double quotes, without escapes.
    fn string(&mut self) -> Result<String, String> {
        self.skip_spaces();
        let quote = self
            .rest
            .chars()
            .next()
            .filter(|&c| c == '\'' || c == '"')
            .ok_or_else(|| format!("expected a string at {:?}", self.context()))?;
        let body = &self.rest[1..];
        let end = body
            .find(quote)
            .ok_or("an unterminated string in the header")?;
        let value = &body[..end];
        if value.contains('\\') {
            return Err("escapes in a header string".into());
        }
        self.rest = &body[end + 1..];
        Ok(value.to_owned())
    }

    fn boolean(&mut self) -> Result<bool, String> {
        self.skip_spaces();
        for (word, value) in [("True", true), ("False", false)] {
            if let Some(rest) = self.rest.strip_prefix(word) {
                self.rest = rest;
                return Ok(value);
            }
        }
        Err(format!("expected True or False at {:?}", self.context()))
    }

    /// `()`, `(3,)`, `(3, 4)`: non-negative integers that fit in `usize`.
    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect('(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(')') {
                return Ok(dims);
            }
            self.skip_spaces();
            let digits = self
                .rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(self.rest.len());
            if digits == 0 {
                return Err(format!("expected a dimension at {:?}", self.context()));
            }
            let dim = self.rest[..digits]
                .parse::<usize>()
                .map_err(|_| format!("dimension {} is too large", &self.rest[..digits]))?;
            if dims.len() >= 32 {
                return Err("more than 32 dimensions in the header".into());
            }
            dims.push(dim);
            self.rest = &self.rest[digits..];
            if !self.eat(',') {
                self.expect(')')?;
                return Ok(dims);
            }
        }
    }
}

/// Where NumPy aligns the data (`format.ARRAY_ALIGN`).
const ARRAY_ALIGN: usize = 64;

/// Spare digits NumPy leaves after the dict for the growing axis (`GROWTH_AXIS_MAX_DIGITS`),
/// so that a header written here is byte for byte the one `numpy.save` writes.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The complete header (magic to newline) that `numpy.save` (NumPy 1.23 and later) writes
/// for an array of `shape` with element type `descr`, in C or Fortran order: the data starts
/// right after it, at a multiple of 64 bytes.
pub(crate) fn header_bytes(descr: &str, fortran_order: bool, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let order = if fortran_order { "True" } else { "False" };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {dims}, }}");
    let growing = if fortran_order {
        shape.last()
    } else {
        shape.first()
    };
    if let Some(extent) = growing {
        let digits = extent.to_string().len();
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    // Version 1 holds a 2-byte header length after the 8-byte magic and version; a header
    // that does not fit (thousands of dimensions) takes version 2's 4 bytes.
    // NumPy pads with 1 to 64 spaces (64 when already aligned, as `format._wrap_header`).
    let text_len = dict.len() + 1; // the closing newline
    let pad = |prefix: usize| ARRAY_ALIGN - (prefix + text_len) % ARRAY_ALIGN;
    let (version, prefix) = if text_len + pad(10) <= usize::from(u16::MAX) {
        (1_u8, 10)
    } else {
        (2_u8, 12)
    };
    let pad = pad(prefix);
    let header_len = text_len + pad;
    let mut out = Vec::with_capacity(prefix + header_len);
    out.extend_from_slice(b"\x93NUMPY");
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(version: u8, dict: &str) -> Vec<u8> {
        let mut out = b"\x93NUMPY".to_vec();
        out.push(version);
        out.push(0);
        if version == 1 {
            out.extend((dict.len() as u16).to_le_bytes());
        } else {
            out.extend((dict.len() as u32).to_le_bytes());
        }
        out.extend(dict.as_bytes());
        out
    }

    #[test]
    fn headers_numpy_writes_parse() {
        let text = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }   \n";
        let h = read_header(&mut npy(1, text).as_slice()).unwrap();
        assert_eq!(h.descr, "<f8");
        assert!(!h.fortran_order);
        assert_eq!(h.shape, [3, 4]);
        assert_eq!(h.data_offset, 10 + text.len() as u64);
        assert_eq!(
            (h.len(), h.file_size(8)),
            (Some(12), Some(h.data_offset + 96))
        );
        let scalar = "{'descr': '|u1', 'fortran_order': True, 'shape': (), }\n";
        let h = read_header(&mut npy(2, scalar).as_slice()).unwrap();
        assert_eq!(
            (h.shape.len(), h.len(), h.fortran_order),
            (0, Some(1), true)
        );
        let one = "{\"shape\": (7,), \"descr\": \"<i4\", \"fortran_order\": False}";
        assert_eq!(read_header(&mut npy(3, one).as_slice()).unwrap().shape, [7]);
    }

    #[test]
    fn bad_headers_are_refused_without_reading_what_they_claim() {
        let refused = |bytes: Vec<u8>| read_header(&mut bytes.as_slice()).unwrap_err();
        assert!(refused(b"PK\x03\x04 a zip".to_vec()).contains("not a .npy"));
        assert!(refused(b"\x93NUMPY".to_vec()).contains("too short"));
        let mut huge = b"\x93NUMPY\x02\x00".to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(refused(huge).contains("above"));
        let mut short = npy(
            1,
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
        );
        short.truncate(20);
        assert!(refused(short).contains("cut short"));
        for dict in [
            "{'descr': '<f8', 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': Maybe, 'shape': (3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (-3,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999,), }",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'x': 1}",
            "[1, 2]",
        ] {
            read_header(&mut npy(1, dict).as_slice()).unwrap_err();
        }
        // A shape whose element count overflows is parsed but has no size.
        let h = read_header(
            &mut npy(
                1,
                "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }",
            )
            .as_slice(),
        )
        .unwrap();
        assert_eq!((h.len(), h.file_size(8)), (None, None));
    }
}
