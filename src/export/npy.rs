//! A reader for NumPy `.npy` files, the format in which `ArrayData` (and its subclasses) keeps
//! each array in the node repository.
//!
//! Supported: format versions 1.0, 2.0 and 3.0; C and Fortran order; little- and big-endian
//! floats (`f8`, `f4`), signed and unsigned integers (1, 2, 4, 8 bytes) and booleans (`|b1`).
//! Values are widened to three kinds (`f64`, `i64`, `bool`) and always returned in C (row-major)
//! order, so callers never need to look at the original memory layout.
//!
//! ```ignore
//! let array = npy::parse(&bytes)?;
//! if let NpyData::F64(values) = &array.data { /* values.len() == array.element_count() */ }
//! ```

/// A parsed array: its shape and its values flattened in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The dimensions; empty for a 0-d (scalar) array, which holds one value.
    pub shape: Vec<usize>,
    pub data: NpyData,
}

/// The flattened values, widened to one of three element kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// Floating point dtypes (`f8`, `f4`).
    F64(Vec<f64>),
    /// Integer dtypes (`i1`..`i8`, `u1`..`u4`; `u8` only when the values fit).
    I64(Vec<i64>),
    /// `|b1`.
    Bool(Vec<bool>),
}

impl NpyArray {
    /// Number of elements (the product of the shape, 1 for a scalar).
    pub fn element_count(&self) -> usize {
        self.shape.iter().product()
    }

    /// Element `i` (C order) as `f64`, whatever the kind (`true` is 1.0). Panics if out of range.
    pub fn get_f64(&self, i: usize) -> f64 {
        match &self.data {
            NpyData::F64(v) => v[i],
            NpyData::I64(v) => v[i] as f64,
            NpyData::Bool(v) => f64::from(u8::from(v[i])),
        }
    }
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses the bytes of a `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a .npy file (bad magic string)".into());
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let data_start = header_start + header_len;
    let header = bytes.get(header_start..data_start).ok_or("truncated .npy header")?;
    // Version 3 allows UTF-8 in the header; earlier ones are latin-1, which for the keys and
    // values we read is plain ASCII either way.
    let header = std::str::from_utf8(header).map_err(|_| "non-UTF-8 .npy header")?;
    let header = parse_header(header)?;

    let count: usize = header.shape.iter().product();
    let size = header.dtype.size;
    let body = &bytes[data_start..];
    let needed = count.checked_mul(size).ok_or("array too large")?;
    if body.len() < needed {
        return Err(format!("truncated .npy data: expected {needed} bytes, found {}", body.len()));
    }
    let chunks = body[..needed].chunks_exact(size);
    let data = match header.dtype.kind {
        Kind::Float => NpyData::F64(chunks.map(|c| read_float(c, header.dtype.little)).collect()),
        Kind::Int => NpyData::I64(chunks.map(|c| read_int(c, header.dtype.little)).collect()),
        Kind::UInt => {
            let values = chunks
                .map(|c| i64::try_from(read_uint(c, header.dtype.little)).map_err(|_| "uint64 value out of range"))
                .collect::<Result<Vec<_>, _>>()?;
            NpyData::I64(values)
        }
        Kind::Bool => NpyData::Bool(chunks.map(|c| c[0] != 0).collect()),
    };
    let data = if header.fortran_order && header.shape.len() > 1 { to_c_order(data, &header.shape) } else { data };
    Ok(NpyArray { shape: header.shape, data })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Float,
    Int,
    UInt,
    Bool,
}

#[derive(Debug, Clone, Copy)]
struct Dtype {
    kind: Kind,
    size: usize,
    little: bool,
}

struct Header {
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

fn parse_dtype(descr: &str) -> Result<Dtype, String> {
    let unsupported = || format!("unsupported .npy dtype '{descr}'");
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let little = match order {
        '<' | '|' | '=' => true, // '=' is native; every platform we run on is little-endian
        '>' => false,
        _ => return Err(unsupported()),
    };
    let rest = chars.as_str();
    let (kind, size) = rest.split_at(1.min(rest.len()));
    let size: usize = size.parse().map_err(|_| unsupported())?;
    let kind = match (kind, size) {
        ("f", 4 | 8) => Kind::Float,
        ("i", 1 | 2 | 4 | 8) => Kind::Int,
        ("u", 1 | 2 | 4 | 8) => Kind::UInt,
        ("b", 1) => Kind::Bool,
        _ => return Err(unsupported()),
    };
    Ok(Dtype { kind, size, little })
}

/// Reads the header dict, e.g. `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
/// numpy writes it with `repr`, so the value grammar is small: a quoted string, a bool, or a
/// tuple of integers.
fn parse_header(text: &str) -> Result<Header, String> {
    let text = text.trim_end_matches(['\n', ' ', '\0']).trim();
    let inner = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).ok_or("malformed .npy header")?;
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let (key, after) = quoted(rest)?;
        let after = after.trim_start().strip_prefix(':').ok_or("malformed .npy header")?.trim_start();
        rest = match key {
            "descr" => {
                let (value, after) = quoted(after).map_err(|_| "unsupported (structured) .npy dtype".to_string())?;
                descr = Some(value.to_string());
                after
            }
            "fortran_order" => {
                if let Some(after) = after.strip_prefix("True") {
                    fortran_order = Some(true);
                    after
                } else if let Some(after) = after.strip_prefix("False") {
                    fortran_order = Some(false);
                    after
                } else {
                    return Err("malformed fortran_order in .npy header".into());
                }
            }
            "shape" => {
                let body = after.strip_prefix('(').ok_or("malformed shape in .npy header")?;
                let end = body.find(')').ok_or("malformed shape in .npy header")?;
                let dims = body[..end]
                    .split(',')
                    .map(str::trim)
                    .filter(|d| !d.is_empty())
                    .map(|d| d.trim_end_matches('L').parse::<usize>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| "malformed shape in .npy header")?;
                shape = Some(dims);
                &body[end + 1..]
            }
            other => return Err(format!("unexpected key '{other}' in .npy header")),
        };
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    let descr = descr.ok_or("missing descr in .npy header")?;
    Ok(Header {
        dtype: parse_dtype(&descr)?,
        fortran_order: fortran_order.ok_or("missing fortran_order in .npy header")?,
        shape: shape.ok_or("missing shape in .npy header")?,
    })
}

/// A Python string literal at the start of `s` (no escapes needed for npy headers).
fn quoted(s: &str) -> Result<(&str, &str), String> {
    let quote = s.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or("malformed .npy header")?;
    let body = &s[1..];
    let end = body.find(quote).ok_or("malformed .npy header")?;
    Ok((&body[..end], &body[end + 1..]))
}

fn read_float(c: &[u8], little: bool) -> f64 {
    match (c.len(), little) {
        (8, true) => f64::from_le_bytes(c.try_into().unwrap()),
        (8, false) => f64::from_be_bytes(c.try_into().unwrap()),
        (4, true) => f64::from(f32::from_le_bytes(c.try_into().unwrap())),
        (4, false) => f64::from(f32::from_be_bytes(c.try_into().unwrap())),
        _ => unreachable!("dtype sizes are checked in parse_dtype"),
    }
}

fn read_uint(c: &[u8], little: bool) -> u64 {
    let mut buf = [0u8; 8];
    if little {
        buf[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(buf)
    } else {
        buf[8 - c.len()..].copy_from_slice(c);
        u64::from_be_bytes(buf)
    }
}

fn read_int(c: &[u8], little: bool) -> i64 {
    let raw = read_uint(c, little);
    let bits = 8 * c.len() as u32;
    // Sign-extend from the dtype's width.
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

/// Reorders column-major values into row-major order.
fn to_c_order(data: NpyData, shape: &[usize]) -> NpyData {
    fn reorder<T: Copy>(v: Vec<T>, shape: &[usize]) -> Vec<T> {
        let n = v.len();
        let mut out = Vec::with_capacity(n);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..n {
            // Fortran offset of the current C-order multi-index.
            let mut offset = 0;
            let mut stride = 1;
            for (i, dim) in index.iter().zip(shape) {
                offset += i * stride;
                stride *= dim;
            }
            out.push(v[offset]);
            // Advance the multi-index, last axis fastest.
            for axis in (0..shape.len()).rev() {
                index[axis] += 1;
                if index[axis] < shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
        out
    }
    match data {
        NpyData::F64(v) => NpyData::F64(reorder(v, shape)),
        NpyData::I64(v) => NpyData::I64(reorder(v, shape)),
        NpyData::Bool(v) => NpyData::Bool(reorder(v, shape)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a .npy file the way numpy does (header padded with spaces to a multiple of 64).
    fn npy(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let prefix = if version == 1 { 10 } else { 12 };
        let mut h = header.to_string();
        while !(prefix + h.len() + 1).is_multiple_of(64) {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((h.len() as u16).to_le_bytes());
        } else {
            out.extend((h.len() as u32).to_le_bytes());
        }
        out.extend(h.as_bytes());
        out.extend(data);
        out
    }

    fn f8(values: &[f64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn f8_c_order() {
        let bytes =
            npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", &f8(&[1., 2., 3., 4., 5., 6.]));
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, NpyData::F64(vec![1., 2., 3., 4., 5., 6.]));
        assert_eq!(a.element_count(), 6);
    }

    #[test]
    fn f8_fortran_order_is_returned_in_c_order() {
        // The 2x3 matrix [[1,2,3],[4,5,6]] stored column by column.
        let bytes =
            npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", &f8(&[1., 4., 2., 5., 3., 6.]));
        let a = parse(&bytes).unwrap();
        assert_eq!(a.data, NpyData::F64(vec![1., 2., 3., 4., 5., 6.]));
        // 3-d: element (i, j, k) of shape (2, 2, 2) has value 100i + 10j + k.
        let mut fortran = Vec::new();
        for k in 0..2 {
            for j in 0..2 {
                for i in 0..2 {
                    fortran.push((100 * i + 10 * j + k) as f64);
                }
            }
        }
        let bytes = npy(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2, 2), }", &f8(&fortran));
        let a = parse(&bytes).unwrap();
        assert_eq!(a.data, NpyData::F64(vec![0., 1., 10., 11., 100., 101., 110., 111.]));
    }

    #[test]
    fn integers_and_bools() {
        let data: Vec<u8> = [-1i64, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", &data)).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![-1, 7]));
        let data: Vec<u8> = [-5i32, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(&npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", &data)).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![-5, 3]));
        let data: Vec<u8> = [-5i32, 3].iter().flat_map(|v| v.to_be_bytes()).collect();
        let a = parse(&npy(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", &data)).unwrap();
        assert_eq!(a.data, NpyData::I64(vec![-5, 3]));
        let a = parse(&npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", &[1, 0, 1])).unwrap();
        assert_eq!(a.data, NpyData::Bool(vec![true, false, true]));
        assert_eq!((0..3).map(|i| a.get_f64(i)).collect::<Vec<_>>(), vec![1.0, 0.0, 1.0]);
    }

    #[test]
    fn version_2_scalar_and_empty() {
        let a = parse(&npy(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &f8(&[2.5]))).unwrap();
        assert_eq!(a.shape, Vec::<usize>::new());
        assert_eq!(a.data, NpyData::F64(vec![2.5]));
        let a = parse(&npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }", &[])).unwrap();
        assert_eq!(a.shape, vec![0, 3]);
        assert_eq!(a.element_count(), 0);
    }

    #[test]
    fn errors() {
        assert!(parse(b"not numpy").is_err());
        let truncated = npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", &f8(&[1.0]));
        assert!(parse(&truncated).is_err());
        let structured = npy(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", &f8(&[1.0]));
        assert!(parse(&structured).is_err());
        let complex = npy(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", &f8(&[1.0, 0.0]));
        assert!(parse(&complex).is_err());
    }

    #[test]
    fn real_numpy_file() {
        // `np.save(f, np.array([[0.0, 0.5], [0.25, 1.0]]))` as written by numpy 1.x/2.x.
        let mut bytes = b"\x93NUMPY\x01\x00v\x00{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }".to_vec();
        while bytes.len() < 127 {
            bytes.push(b' ');
        }
        bytes.push(b'\n');
        bytes.extend(f8(&[0.0, 0.5, 0.25, 1.0]));
        let a = parse(&bytes).unwrap();
        assert_eq!(a.shape, vec![2, 2]);
        assert_eq!(a.data, NpyData::F64(vec![0.0, 0.5, 0.25, 1.0]));
    }
}
