//! TEST-ONLY cheating, for the end-to-end tests and the demo that show validators catching a
//! dishonest worker (`--test-cheat-rate`, `--test-cheat-seed`, `--test-cheat-log`).
//!
//! A cheated task skips ONNX inference (the compute a real cheater would save) and commits, with
//! code 0 like an honest result, a well-formed canonical output: the tensors the model declares
//! (same names, dtypes and shapes) filled with pseudo-random values. Which tasks are cheated is
//! a pure function of the task id, the rate and the seed, so a test can predict it.

use alloy::primitives::{keccak256, B256, U256};
use inference::tensor::{self, DType, Tensor};
use inference::InferenceError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `rate` is compared with `hash mod CHEAT_SCALE` as `rate * CHEAT_SCALE` (1e18).
pub const CHEAT_SCALE: u64 = 1_000_000_000_000_000_000;

/// clap value parser of `--test-cheat-rate`: a fraction in `[0, 1]` (NaN and infinities refused).
pub fn parse_cheat_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|e| format!("--test-cheat-rate must be a fraction in [0, 1], got {s:?}: {e}"))?;
    if !rate.is_finite() || !(0.0..=1.0).contains(&rate) {
        return Err(format!(
            "--test-cheat-rate must be a fraction in [0, 1], got {s:?}"
        ));
    }
    Ok(rate)
}

/// The per-process salt: `bytes32(uint256(seed))` (the big-endian seed in the low 8 bytes).
pub fn cheat_salt(seed: u64) -> B256 {
    B256::from(U256::from(seed))
}

/// `rate * 1e18`, rounded, in `0..=1e18`.
pub fn cheat_threshold(rate: f64) -> u64 {
    if rate.is_nan() || rate <= 0.0 {
        return 0;
    }
    if rate >= 1.0 {
        return CHEAT_SCALE;
    }
    ((rate * CHEAT_SCALE as f64).round() as u64).min(CHEAT_SCALE)
}

/// Whether the test cheater cheats on `task_id`: `uint256(keccak256(abi.encode(uint256 taskId,
/// bytes32 salt))) % 1e18 < rate * 1e18`, with `salt = cheat_salt(seed)`. Rate 0 never cheats,
/// rate 1 always does.
pub fn should_cheat(task_id: U256, rate: f64, seed: u64) -> bool {
    should_cheat_salted(task_id, cheat_salt(seed), cheat_threshold(rate))
}

fn should_cheat_salted(task_id: U256, salt: B256, threshold: u64) -> bool {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&task_id.to_be_bytes::<32>());
    buf[32..].copy_from_slice(salt.as_slice());
    let draw = U256::from_be_bytes(keccak256(buf).0) % U256::from(CHEAT_SCALE);
    draw < U256::from(threshold)
}

/// Pseudo-random bytes: block `k` is `keccak256(abi.encode(uint256 taskId, bytes32 salt,
/// uint256 k))`.
struct Stream {
    seed: [u8; 64],
    block: u64,
    buf: [u8; 32],
    pos: usize,
}

impl Stream {
    fn new(task_id: U256, salt: B256) -> Self {
        let mut seed = [0u8; 64];
        seed[..32].copy_from_slice(&task_id.to_be_bytes::<32>());
        seed[32..].copy_from_slice(salt.as_slice());
        Self {
            seed,
            block: 0,
            buf: [0; 32],
            pos: 32,
        }
    }

    fn byte(&mut self) -> u8 {
        if self.pos == 32 {
            let mut input = [0u8; 96];
            input[..64].copy_from_slice(&self.seed);
            input[64..].copy_from_slice(&U256::from(self.block).to_be_bytes::<32>());
            self.buf = keccak256(input).0;
            self.block += 1;
            self.pos = 0;
        }
        self.pos += 1;
        self.buf[self.pos - 1]
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.byte())
    }
}

/// The largest float below 10, so that a rounded value stays in `[-10, 10)`.
fn below_ten_f32(v: f32) -> f32 {
    v.min(f32::from_bits(10f32.to_bits() - 1))
}

fn below_ten_f64(v: f64) -> f64 {
    v.min(f64::from_bits(10f64.to_bits() - 1))
}

/// Canonical safetensors bytes of the given tensors (name, dtype, shape) filled with values
/// derived from `keccak256` of the task id and the salt: floats uniform in `[-10, 10)`, BOOL 0
/// or 1, integers any value. Deterministic for a task id and salt.
pub fn fake_output(
    task_id: U256,
    salt: B256,
    outputs: &[(String, DType, Vec<usize>)],
) -> Result<Vec<u8>, InferenceError> {
    let mut rng = Stream::new(task_id, salt);
    let mut tensors = Vec::with_capacity(outputs.len());
    for (name, dtype, shape) in outputs {
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n * dtype.size());
        for _ in 0..n {
            match dtype {
                DType::F32 => {
                    let x = f64::from(u32::from_be_bytes(rng.bytes()) >> 8) / f64::from(1u32 << 24);
                    data.extend(below_ten_f32((-10.0 + 20.0 * x) as f32).to_le_bytes());
                }
                DType::F64 => {
                    let x = (u64::from_be_bytes(rng.bytes()) >> 11) as f64 / (1u64 << 53) as f64;
                    data.extend(below_ten_f64(-10.0 + 20.0 * x).to_le_bytes());
                }
                DType::Bool => data.push(rng.byte() & 1),
                other => (0..other.size()).for_each(|_| data.push(rng.byte())),
            }
        }
        tensors.push((name.as_str(), Tensor::checked(*dtype, shape.clone(), data)?));
    }
    tensor::encode(&tensors)
}

/// An output the model declares in its ONNX graph: `None` dims are dynamic (symbolic or unset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputDecl {
    /// Output name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions; `None` where the graph does not fix the size.
    pub dims: Vec<Option<usize>>,
}

/// The concrete (name, dtype, shape) of every declared output for an input batch of `batch`
/// rows: a dynamic leading dimension is the batch size. `None` when another dimension is
/// dynamic (only a real run knows it).
pub fn resolve_outputs(
    decls: &[OutputDecl],
    batch: usize,
) -> Option<Vec<(String, DType, Vec<usize>)>> {
    decls
        .iter()
        .map(|d| {
            let shape = d
                .dims
                .iter()
                .enumerate()
                .map(|(i, dim)| match (i, dim) {
                    (_, Some(n)) => Some(*n),
                    (0, None) => Some(batch),
                    _ => None,
                })
                .collect::<Option<Vec<usize>>>()?;
            Some((d.name.clone(), d.dtype, shape))
        })
        .collect()
}

/// The graph outputs declared in ONNX model bytes (`ModelProto.graph.output`), read straight
/// from the protobuf without running anything.
pub fn onnx_outputs(model: &[u8]) -> Result<Vec<OutputDecl>, String> {
    let graph = pb::fields(model)?
        .into_iter()
        .find_map(|(n, f)| (n == 7).then(|| f.bytes()).flatten())
        .ok_or("the ONNX model has no graph")?;
    let mut out = Vec::new();
    for (n, f) in pb::fields(graph)? {
        if n != 12 {
            continue;
        }
        let info = f.bytes().ok_or("graph output is not a message")?;
        out.push(value_info(info)?);
    }
    if out.is_empty() {
        return Err("the ONNX graph declares no outputs".into());
    }
    Ok(out)
}

/// `ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1
/// { dim_value = 1 | dim_param = 2 } } } } }`.
fn value_info(bytes: &[u8]) -> Result<OutputDecl, String> {
    let mut name = None;
    let mut tensor_type = None;
    for (n, f) in pb::fields(bytes)? {
        match n {
            1 => name = f.bytes().map(|b| String::from_utf8_lossy(b).into_owned()),
            2 => {
                tensor_type = pb::fields(f.bytes().ok_or("output type is not a message")?)?
                    .into_iter()
                    .find_map(|(n, f)| (n == 1).then(|| f.bytes()).flatten());
            }
            _ => {}
        }
    }
    let name = name.ok_or("graph output without a name")?;
    let tensor_type = tensor_type.ok_or_else(|| format!("output {name:?} is not a tensor"))?;
    let mut elem = None;
    let mut dims = None;
    for (n, f) in pb::fields(tensor_type)? {
        match (n, f) {
            (1, pb::Field::Varint(v)) => elem = Some(v),
            (2, pb::Field::Bytes(shape)) => {
                let mut ds = Vec::new();
                for (n, f) in pb::fields(shape)? {
                    if n != 1 {
                        continue;
                    }
                    let dim = f.bytes().ok_or("shape dim is not a message")?;
                    let value = pb::fields(dim)?
                        .into_iter()
                        .find_map(|(n, f)| match (n, f) {
                            (1, pb::Field::Varint(v)) => Some(v as i64),
                            _ => None,
                        });
                    ds.push(
                        value
                            .and_then(|v| usize::try_from(v).ok())
                            .filter(|v| *v > 0),
                    );
                }
                dims = Some(ds);
            }
            _ => {}
        }
    }
    let elem = elem.ok_or_else(|| format!("output {name:?} has no element type"))?;
    let dtype = onnx_dtype(elem)
        .ok_or_else(|| format!("output {name:?} has unsupported ONNX element type {elem}"))?;
    let dims = dims.ok_or_else(|| format!("output {name:?} has no declared shape"))?;
    Ok(OutputDecl { name, dtype, dims })
}

/// `TensorProto.DataType` -> [`DType`].
fn onnx_dtype(elem: u64) -> Option<DType> {
    Some(match elem {
        1 => DType::F32,
        2 => DType::U8,
        3 => DType::I8,
        4 => DType::U16,
        5 => DType::I16,
        6 => DType::I32,
        7 => DType::I64,
        9 => DType::Bool,
        11 => DType::F64,
        12 => DType::U32,
        13 => DType::U64,
        _ => return None,
    })
}

/// Just enough protobuf wire format to walk an ONNX model's graph outputs.
mod pb {
    /// One field's payload.
    #[derive(Debug, Clone, Copy)]
    pub enum Field<'a> {
        Varint(u64),
        Bytes(&'a [u8]),
        Fixed,
    }

    impl<'a> Field<'a> {
        pub fn bytes(self) -> Option<&'a [u8]> {
            match self {
                Field::Bytes(b) => Some(b),
                _ => None,
            }
        }
    }

    fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *buf.get(*pos).ok_or("truncated varint")?;
            *pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    /// The top-level fields of one message, in order.
    pub fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let key = varint(buf, &mut pos)?;
            let (number, wire) = (key >> 3, key & 7);
            let field = match wire {
                0 => Field::Varint(varint(buf, &mut pos)?),
                1 | 5 => {
                    pos += if wire == 1 { 8 } else { 4 };
                    Field::Fixed
                }
                2 => {
                    let len =
                        usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length overflows")?;
                    let end = pos
                        .checked_add(len)
                        .filter(|e| *e <= buf.len())
                        .ok_or("truncated length-delimited field")?;
                    let b = &buf[pos..end];
                    pos = end;
                    Field::Bytes(b)
                }
                w => return Err(format!("unsupported protobuf wire type {w}")),
            };
            if pos > buf.len() {
                return Err("truncated fixed-size field".into());
            }
            out.push((number, field));
        }
        Ok(out)
    }
}

/// The cheating state of one executor process.
pub struct Cheater {
    rate: f64,
    seed: u64,
    fail: bool,
    salt: B256,
    log: Option<(PathBuf, std::fs::File)>,
}

impl Cheater {
    /// `None` when `rate` is 0 (an honest executor). Opens (creating its parent directories) the
    /// cheat log, appending, or fails naming `--test-cheat-log`.
    pub fn new(
        rate: f64,
        seed: u64,
        fail: bool,
        log: Option<&Path>,
    ) -> anyhow::Result<Option<Self>> {
        if cheat_threshold(rate) == 0 {
            return Ok(None);
        }
        let log = match log {
            None => None,
            Some(path) => {
                let err =
                    |e: std::io::Error| anyhow::anyhow!("--test-cheat-log {}: {e}", path.display());
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(err)?;
                Some((path.to_path_buf(), file))
            }
        };
        Ok(Some(Self {
            rate,
            seed,
            fail,
            salt: cheat_salt(seed),
            log,
        }))
    }

    /// The `--test-cheat-rate`.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// `--test-cheat-fail`: cheated tasks commit an input fault instead of a counterfeit output.
    pub fn fails(&self) -> bool {
        self.fail
    }

    /// The `--test-cheat-seed`.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The salt the fake outputs are derived from.
    pub fn salt(&self) -> B256 {
        self.salt
    }

    /// [`should_cheat`] for this process's rate and seed.
    pub fn cheats_on(&self, task_id: U256) -> bool {
        should_cheat(task_id, self.rate, self.seed)
    }

    /// The rate as a percentage for people (`30` for 0.3).
    pub fn percent(&self) -> f64 {
        (self.rate * 100.0 * 1e6).round() / 1e6
    }

    /// Records a cheated task (once its result is journaled): a log line and one decimal line
    /// in the cheat log, flushed.
    pub fn record(&mut self, task_id: U256) {
        tracing::info!(task = %task_id, "cheated");
        if let Some((path, file)) = self.log.as_mut() {
            let written = file
                .write_all(format!("{task_id}\n").as_bytes())
                .and_then(|()| file.flush());
            if let Err(e) = written {
                tracing::warn!(task = %task_id, log = %path.display(), error = %e, "could not append to --test-cheat-log");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolValue;

    fn digits_onnx() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/digits/digits.onnx"
        ))
        .unwrap()
    }

    #[test]
    fn rate_parser_accepts_fractions_and_names_the_flag() {
        assert_eq!(parse_cheat_rate("0").unwrap(), 0.0);
        assert_eq!(parse_cheat_rate("1").unwrap(), 1.0);
        assert_eq!(parse_cheat_rate("0.3").unwrap(), 0.3);
        for bad in ["-0.1", "1.0001", "NaN", "inf", "-inf", "abc", ""] {
            let e = parse_cheat_rate(bad).unwrap_err();
            assert!(
                e.contains("--test-cheat-rate") && e.contains("[0, 1]"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn salt_is_the_seed_as_bytes32() {
        let s = cheat_salt(0x0102_0304_0506_0708);
        assert_eq!(&s[..24], &[0u8; 24]);
        assert_eq!(&s[24..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(cheat_salt(0), B256::ZERO);
    }

    #[test]
    fn selection_is_the_documented_keccak_rule() {
        let seed = 42u64;
        for id in [0u64, 1, 7, 123_456] {
            let id = U256::from(id);
            let encoded = (id, cheat_salt(seed)).abi_encode();
            let draw = U256::from_be_bytes(keccak256(&encoded).0) % U256::from(CHEAT_SCALE);
            for rate in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let want = draw < U256::from((rate * 1e18) as u64);
                assert_eq!(should_cheat(id, rate, seed), want, "id {id} rate {rate}");
            }
        }
    }

    #[test]
    fn rate_zero_never_one_always_and_about_the_rate_in_between() {
        let ids: Vec<U256> = (0..10_000u64).map(U256::from).collect();
        assert!(ids.iter().all(|id| !should_cheat(*id, 0.0, 5)));
        assert!(ids.iter().all(|id| should_cheat(*id, 1.0, 5)));
        let picked: Vec<bool> = ids.iter().map(|id| should_cheat(*id, 0.3, 5)).collect();
        let n = picked.iter().filter(|b| **b).count();
        assert!((2_700..=3_300).contains(&n), "{n} of 10000 at rate 0.3");
        // Deterministic, and the seed changes the selection.
        let again: Vec<bool> = ids.iter().map(|id| should_cheat(*id, 0.3, 5)).collect();
        assert_eq!(picked, again);
        let other: Vec<bool> = ids.iter().map(|id| should_cheat(*id, 0.3, 6)).collect();
        assert_ne!(picked, other);
        // A lower rate cheats on a subset of a higher rate's tasks.
        assert!(ids
            .iter()
            .all(|id| !should_cheat(*id, 0.1, 5) || should_cheat(*id, 0.3, 5)));
    }

    #[test]
    fn thresholds() {
        assert_eq!(cheat_threshold(0.0), 0);
        assert_eq!(cheat_threshold(1.0), CHEAT_SCALE);
        assert_eq!(cheat_threshold(0.5), CHEAT_SCALE / 2);
        assert_eq!(cheat_threshold(f64::NAN), 0);
    }

    #[test]
    fn digits_model_declares_its_outputs() {
        let decls = onnx_outputs(&digits_onnx()).unwrap();
        assert_eq!(
            decls,
            vec![
                OutputDecl {
                    name: "label".into(),
                    dtype: DType::I64,
                    dims: vec![None],
                },
                OutputDecl {
                    name: "probabilities".into(),
                    dtype: DType::F32,
                    dims: vec![None, Some(10)],
                },
            ]
        );
        let shapes = resolve_outputs(&decls, 3).unwrap();
        assert_eq!(shapes[0], ("label".into(), DType::I64, vec![3]));
        assert_eq!(shapes[1], ("probabilities".into(), DType::F32, vec![3, 10]));
        // A dynamic dimension other than the batch is unknown without a run.
        let odd = [OutputDecl {
            name: "x".into(),
            dtype: DType::F32,
            dims: vec![Some(1), None],
        }];
        assert!(resolve_outputs(&odd, 1).is_none());
        assert!(onnx_outputs(b"\x0a\x05hello").is_err());
        assert!(onnx_outputs(b"\xff").is_err());
    }

    #[test]
    fn fake_output_is_a_valid_tensor_document_of_the_declared_signature() {
        let salt = cheat_salt(9);
        let spec = vec![
            ("probabilities".to_string(), DType::F32, vec![2, 10]),
            ("label".to_string(), DType::I64, vec![2]),
            ("mask".to_string(), DType::Bool, vec![4]),
            ("wide".to_string(), DType::F64, vec![3]),
        ];
        let bytes = fake_output(U256::from(77), salt, &spec).unwrap();
        let decoded = tensor::decode(&bytes).unwrap();
        let names: Vec<&str> = decoded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["label", "mask", "probabilities", "wide"]);
        for (name, dtype, shape) in &spec {
            let t = &decoded.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!((&t.dtype, &t.shape), (dtype, shape), "{name}");
        }
        let probs = decoded[2].1.to_f32().unwrap();
        assert!(probs.iter().all(|v| (-10.0..10.0).contains(v)), "{probs:?}");
        assert!(
            probs.windows(2).any(|w| w[0] != w[1]),
            "values vary: {probs:?}"
        );
        let wide = &decoded[3].1;
        assert!(wide
            .data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .all(|v| (-10.0..10.0).contains(&v)));
        // Deterministic per task and salt, different across tasks and salts.
        assert_eq!(fake_output(U256::from(77), salt, &spec).unwrap(), bytes);
        assert_ne!(fake_output(U256::from(78), salt, &spec).unwrap(), bytes);
        assert_ne!(
            fake_output(U256::from(77), cheat_salt(10), &spec).unwrap(),
            bytes
        );
        // Many draws stay inside [-10, 10) and cover both signs.
        let big = fake_output(
            U256::from(1),
            salt,
            &[("p".to_string(), DType::F32, vec![10_000])],
        )
        .unwrap();
        let v = tensor::decode(&big).unwrap()[0].1.to_f32().unwrap();
        assert!(v.iter().all(|x| (-10.0..10.0).contains(x)));
        assert!(v.iter().any(|x| *x < -9.0) && v.iter().any(|x| *x > 9.0));
    }

    #[test]
    fn fake_output_for_the_digits_model_decodes_like_a_real_one() {
        let decls = onnx_outputs(&digits_onnx()).unwrap();
        let shapes = resolve_outputs(&decls, 1).unwrap();
        let bytes = fake_output(U256::from(3), cheat_salt(0), &shapes).unwrap();
        let d = tensor::decode(&bytes).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].0.as_str(), d[0].1.dtype, &d[0].1.shape[..]),
            ("label", DType::I64, &[1usize][..])
        );
        assert_eq!(
            (d[1].0.as_str(), d[1].1.dtype, &d[1].1.shape[..]),
            ("probabilities", DType::F32, &[1usize, 10][..])
        );
    }

    #[test]
    fn cheater_is_off_at_rate_zero_and_logs_each_task() {
        assert!(Cheater::new(0.0, 1, false, None).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a/b/cheated.txt");
        let mut c = Cheater::new(1.0, 3, false, Some(&log)).unwrap().unwrap();
        assert!(c.cheats_on(U256::from(5)));
        assert_eq!(c.percent(), 100.0);
        let third = Cheater::new(0.3, 3, true, None).unwrap().unwrap();
        assert_eq!(third.percent(), 30.0);
        assert!(third.fails() && !c.fails());
        let ids = (0..200u64).map(U256::from);
        assert!(ids
            .clone()
            .all(|id| third.cheats_on(id) == should_cheat(id, 0.3, 3)));
        assert_eq!(c.salt(), cheat_salt(3));
        c.record(U256::from(5));
        c.record(U256::from(12_345_678_901_234_567_890u128));
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "5\n12345678901234567890\n"
        );
        // Appends across restarts.
        let mut c = Cheater::new(1.0, 3, false, Some(&log)).unwrap().unwrap();
        c.record(U256::from(6));
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 3);
        // An impossible path is an error naming the flag.
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = Cheater::new(0.5, 0, false, Some(&file.join("log.txt")))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--test-cheat-log"), "{e}");
    }
}
