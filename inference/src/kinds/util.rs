//! Decoding what users send (images, WAV audio) and small helpers shared by the kinds.

use crate::InferenceError;

/// Decodes PNG or JPEG bytes into 8-bit RGB. Errors say what the bytes are not.
pub fn decode_image(bytes: &[u8]) -> Result<image::RgbImage, InferenceError> {
    let format = image::guess_format(bytes).map_err(|_| {
        InferenceError::InputInvalid("input is not an image (expected PNG or JPEG bytes)".into())
    })?;
    if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
        return Err(InferenceError::InputInvalid(format!(
            "input is a {format:?} image; this model takes PNG or JPEG"
        )));
    }
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| InferenceError::InputInvalid(format!("image does not decode: {e}")))?;
    Ok(img.to_rgb8())
}

/// Decodes a WAV file into mono f32 samples at 16 kHz (the only rate accepted), at most
/// `max_seconds` long. Stereo is averaged to mono; 8/16/24/32-bit integer and 32-bit float WAV
/// are accepted.
pub fn decode_wav_16k(bytes: &[u8], max_seconds: f64) -> Result<Vec<f32>, InferenceError> {
    let bad = |m: String| InferenceError::InputInvalid(m);
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))
        .map_err(|e| bad(format!("input is not a WAV file: {e}")))?;
    let spec = reader.spec();
    if spec.sample_rate != 16_000 {
        return Err(bad(format!(
            "audio is sampled at {} Hz; this model takes 16000 Hz WAV",
            spec.sample_rate
        )));
    }
    let channels = spec.channels.max(1) as usize;
    let frames = reader.duration() as f64;
    if frames / 16_000.0 > max_seconds {
        return Err(bad(format!(
            "audio is {:.1} s long; this model takes at most {max_seconds} s",
            frames / 16_000.0
        )));
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .into_samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("WAV samples do not decode: {e}")))?,
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| v as f32 / scale))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(format!("WAV samples do not decode: {e}")))?
        }
    };
    if samples.is_empty() {
        return Err(bad("audio has no samples".into()));
    }
    Ok(samples
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect())
}

/// Levenshtein distance between two strings, counted in Unicode scalar values.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_chars() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("héllo", "hello"), 1);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn garbage_is_not_an_image_or_wav() {
        let e = decode_image(b"not an image").unwrap_err().to_string();
        assert!(e.contains("not an image"), "{e}");
        let e = decode_wav_16k(b"RIFF....", 30.0).unwrap_err().to_string();
        assert!(e.contains("not a WAV"), "{e}");
    }
}
