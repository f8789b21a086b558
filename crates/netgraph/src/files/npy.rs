//! `.npy` arrays: inputs `(batch, features)` as f32/f64, class targets
//! `(batch,)` or `(batch, 1)` as i32/i64, regression targets
//! `(batch, outputs)` as f32/f64; C order only.

use std::io::BufWriter;
use std::path::Path;

use faer::Mat;
use npyz::{AutoSerialize, NpyFile, Order, TypeChar, WriterBuilder};

use crate::batch::{row_major, Batch, Targets};
use crate::error::{NetError, Result};
use crate::files::io_err;
use crate::network::Network;

/// The numbers of an array, widened without loss.
enum Data {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

struct Array {
    shape: Vec<u64>,
    dtype: String,
    data: Data,
}

/// The dtypes an array's slot accepts, and how its errors name them.
#[derive(Clone, Copy)]
struct Accept {
    floats: bool,
    ints: bool,
    expected: &'static str,
}

/// Inputs, right-hand sides: f32 or f64.
const FLOATS: Accept = Accept { floats: true, ints: false, expected: "f32 or f64" };
/// A classifier's targets.
const CLASSES: Accept = Accept { floats: false, ints: true, expected: "i32 or i64 (class indices)" };
/// A regression's targets.
const VALUES: Accept = Accept { floats: true, ints: false, expected: "f32 or f64 (regression targets)" };
/// Targets of a network without a spec, whose loss is unknown here.
const EITHER: Accept =
    Accept { floats: true, ints: true, expected: "i32 or i64 (class indices), or f32 or f64 (values)" };

fn npy_err(path: &Path, reason: impl Into<String>) -> NetError {
    NetError::Npy { path: path.to_path_buf(), reason: reason.into() }
}

/// Checks what the npy reader would trust blindly: a header length field
/// pointing past the end of the file (the reader would allocate that many
/// bytes, up to 4 GiB for a version 2 header, before noticing), and header
/// dimensions whose product overflows 64 bits (the reader multiplies them
/// unchecked).
fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    // Magic (6 bytes), version (2), then a u16 (version 1) or u32 length.
    let (len_bytes, start) = match bytes.get(6) {
        Some(1) => (2usize, 10usize),
        Some(2 | 3) => (4, 12),
        // A bad magic or version: the reader's own message names it.
        _ => return Ok(()),
    };
    let Some(field) = bytes.get(8..8 + len_bytes) else {
        return Err(npy_err(path, format!("file of {} bytes ends inside the header", bytes.len())));
    };
    let len = field.iter().rev().fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let after = bytes.len().saturating_sub(start);
    let Some(text) = bytes.get(start..start + len) else {
        return Err(npy_err(
            path,
            format!("header claims {len} bytes, but the file has only {after} after the preamble"),
        ));
    };
    check_header_dims(path, text)
}

/// Refuses a header whose non-zero integers (shape and sub-array dimensions,
/// outside quoted strings) multiply past `u64`: a conservative bound on
/// every product the reader forms.
fn check_header_dims(path: &Path, text: &[u8]) -> Result<()> {
    let mut product: Option<u64> = Some(1);
    let mut quote: Option<u8> = None;
    let mut digits = String::new();
    for &c in text.iter().chain(std::iter::once(&b' ')) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_ascii_digit() => digits.push(char::from(c)),
            None => {
                if !digits.is_empty() {
                    let d = digits.parse::<u64>().ok();
                    if d != Some(0) {
                        product = product.zip(d).and_then(|(p, d)| p.checked_mul(d));
                    }
                    digits.clear();
                }
                if c == b'\'' || c == b'"' {
                    quote = Some(c);
                }
            }
        }
    }
    if product.is_none() {
        let header = String::from_utf8_lossy(text);
        return Err(npy_err(path, format!("header dimensions overflow 64 bits: {}", header.trim_end())));
    }
    Ok(())
}

/// Reads an array of a dtype `accept` allows (among f32/f64/i32/i64) in C
/// order, refusing a header that claims more data than the file holds
/// before allocating anything.
fn read_array(path: &Path, name: &str, accept: Accept) -> Result<Array> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    check_header(path, &bytes)?;
    let npy = NpyFile::new(&bytes[..]).map_err(|e| npy_err(path, e.to_string()))?;
    if npy.order() == Order::Fortran {
        return Err(npy_err(path, "Fortran order is not supported; save a C-contiguous array (np.ascontiguousarray)"));
    }
    let shape = npy.shape().to_vec();
    let (dtype, kind) = match npy.dtype() {
        npyz::DType::Plain(ts) => (ts.to_string(), Some((ts.type_char(), ts.size_field()))),
        other => (other.descr(), None),
    };
    let bad_dtype = || NetError::FileDtype {
        path: path.to_path_buf(),
        name: name.into(),
        expected: accept.expected,
        found: dtype.clone(),
    };
    let (tc, size) = kind.ok_or_else(bad_dtype)?;
    let allowed = match (tc, size) {
        (TypeChar::Float, 4 | 8) => accept.floats,
        (TypeChar::Int, 4 | 8) => accept.ints,
        _ => false,
    };
    if !allowed {
        return Err(bad_dtype());
    }
    let elements = shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let needed = elements.and_then(|n| n.checked_mul(size));
    let available = bytes.len() as u64;
    match needed {
        Some(n) if n <= available => {}
        _ => {
            return Err(npy_err(
                path,
                format!("header claims shape {shape:?} of {dtype}, more data than the file's {available} bytes"),
            ))
        }
    }
    let read = |e: std::io::Error| npy_err(path, e.to_string());
    let data = match (tc, size) {
        (TypeChar::Float, 8) => Data::Float(npy.into_vec::<f64>().map_err(read)?),
        (TypeChar::Float, _) => Data::Float(npy.into_vec::<f32>().map_err(read)?.into_iter().map(f64::from).collect()),
        (_, 8) => Data::Int(npy.into_vec::<i64>().map_err(read)?),
        _ => Data::Int(npy.into_vec::<i32>().map_err(read)?.into_iter().map(i64::from).collect()),
    };
    Ok(Array { shape, dtype, data })
}

fn floats(path: &Path, name: &str, a: Array) -> Result<Vec<f64>> {
    match a.data {
        Data::Float(v) => {
            if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
                return Err(NetError::NonFinite { what: path.display().to_string(), index, value });
            }
            Ok(v)
        }
        Data::Int(_) => Err(NetError::FileDtype {
            path: path.to_path_buf(),
            name: name.into(),
            expected: "f32 or f64",
            found: a.dtype,
        }),
    }
}

/// Reads a 1-D f32/f64 array.
pub fn read_npy_vector(path: impl AsRef<Path>) -> Result<Vec<f64>> {
    let path = path.as_ref();
    let a = read_array(path, "array", FLOATS)?;
    if a.shape.len() != 1 {
        return Err(NetError::FileShape {
            path: path.to_path_buf(),
            name: "array".into(),
            expected: "(n,)".into(),
            found: a.shape,
        });
    }
    floats(path, "array", a)
}

/// Reads inputs alone for `net` (`(batch, input_dim)`, f32/f64), as for a
/// prediction, where there are no targets.
pub fn load_inputs(net: &Network, path: impl AsRef<Path>) -> Result<Mat<f64>> {
    let ip = path.as_ref();
    let inputs = read_array(ip, "inputs", FLOATS)?;
    let d = net.input_dim();
    if inputs.shape.len() != 2 || inputs.shape[1] != d as u64 {
        return Err(NetError::FileShape {
            path: ip.to_path_buf(),
            name: "inputs".into(),
            expected: format!("(batch, {d})"),
            found: inputs.shape,
        });
    }
    let b = inputs.shape[0] as usize;
    let x = floats(ip, "inputs", inputs)?;
    Ok(Mat::from_fn(b, d, |s, j| x[s * d + j]))
}

/// Writes any array of npyz-serialisable numbers with the given shape (C order).
pub fn write_npy<T: AutoSerialize + Copy>(path: impl AsRef<Path>, shape: &[u64], data: &[T]) -> Result<()> {
    let path = path.as_ref();
    let file = std::fs::File::create(path).map_err(io_err(path))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(io_err(path))?;
    w.extend(data.iter().copied()).map_err(io_err(path))?;
    w.finish().map_err(io_err(path))
}

/// Writes a 1-D f64 array.
pub fn write_npy_vector(path: impl AsRef<Path>, v: &[f64]) -> Result<()> {
    write_npy(path, &[v.len() as u64], v)
}

/// Writes a matrix as a 2-D f64 array `(rows, cols)`.
pub fn save_npy(path: impl AsRef<Path>, m: &Mat<f64>) -> Result<()> {
    let data: Vec<f64> = row_major(m).collect();
    write_npy(path, &[m.nrows() as u64, m.ncols() as u64], &data)
}

/// Writes a batch: inputs as f64 `(batch, features)`, class targets as i64
/// `(batch,)`, regression targets as f64 `(batch, outputs)`.
pub fn save_batch(batch: &Batch, inputs_path: impl AsRef<Path>, targets_path: impl AsRef<Path>) -> Result<()> {
    save_npy(inputs_path, batch.inputs())?;
    match batch.targets() {
        Targets::Classes(c) => {
            let v: Vec<i64> = c.iter().map(|&k| k as i64).collect();
            write_npy(targets_path, &[v.len() as u64], &v)
        }
        Targets::Values(t) => save_npy(targets_path, t),
    }
}

/// Reads a batch for `net`: inputs `(batch, input_dim)` f32/f64; targets
/// i32/i64 classes `(batch,)` or `(batch, 1)` for a classifier, f32/f64
/// values `(batch, outputs)` for a regression.
pub fn load_batch(net: &Network, inputs_path: impl AsRef<Path>, targets_path: impl AsRef<Path>) -> Result<Batch> {
    let (ip, tp) = (inputs_path.as_ref(), targets_path.as_ref());
    let inputs = read_array(ip, "inputs", FLOATS)?;
    let d = net.input_dim() as u64;
    if inputs.shape.len() != 2 || inputs.shape[1] != d {
        let expected = format!("(batch, {d})");
        return Err(NetError::FileShape {
            path: ip.to_path_buf(),
            name: "inputs".into(),
            expected,
            found: inputs.shape,
        });
    }
    let b = inputs.shape[0] as usize;
    let x = floats(ip, "inputs", inputs)?;
    let x = Mat::from_fn(b, d as usize, |s, j| x[s * d as usize + j]);

    let classifier = net.spec().map(|s| matches!(s.loss, crate::LossSpec::CrossEntropy { .. }));
    let accept = match classifier {
        Some(true) => CLASSES,
        Some(false) => VALUES,
        None => EITHER,
    };
    let targets = read_array(tp, "targets", accept)?;
    let tb = targets.shape.first().copied().unwrap_or(0) as usize;
    let mismatch = |tb: usize| NetError::FileBatchMismatch {
        inputs_path: ip.to_path_buf(),
        inputs: b,
        targets_path: tp.to_path_buf(),
        targets: tb,
    };
    let classes = net.spec().map_or(0, |s| s.loss.outputs());
    // `read_array` has refused integers for a regression and floats for a
    // classifier.
    let t = match targets.data {
        Data::Int(v) => {
            if !matches!(targets.shape.as_slice(), [_] | [_, 1]) {
                let expected = "(batch,) or (batch, 1)".to_string();
                return Err(NetError::FileShape {
                    path: tp.to_path_buf(),
                    name: "targets".into(),
                    expected,
                    found: targets.shape,
                });
            }
            if tb != b {
                return Err(mismatch(tb));
            }
            let mut ks = Vec::with_capacity(v.len());
            for (sample, &class) in v.iter().enumerate() {
                match usize::try_from(class) {
                    Ok(k) if classifier.is_none() || k < classes => ks.push(k),
                    _ => return Err(NetError::FileClassOutOfRange { path: tp.to_path_buf(), sample, class, classes }),
                }
            }
            Targets::Classes(ks)
        }
        Data::Float(_) => {
            let k = net.spec().map_or(0, |s| s.loss.outputs()) as u64;
            let ok = match targets.shape.as_slice() {
                [_, c] => *c == k,
                [_] => k == 1,
                _ => false,
            };
            if !ok {
                let expected = format!("(batch, {k})");
                return Err(NetError::FileShape {
                    path: tp.to_path_buf(),
                    name: "targets".into(),
                    expected,
                    found: targets.shape,
                });
            }
            if tb != b {
                return Err(mismatch(tb));
            }
            let v = floats(tp, "targets", targets)?;
            let k = k as usize;
            Targets::Values(Mat::from_fn(b, k, |s, j| v[s * k + j]))
        }
    };
    let batch = Batch::new(x, t)?;
    if let Some(last) = net.layers().last() {
        last.check_targets(batch.targets())?;
    }
    Ok(batch)
}
