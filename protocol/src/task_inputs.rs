//! Directories of task inputs, as the verifier's canaries (`--canary-inputs`) and the executor's
//! sentinel (`--sentinel-inputs`) read them: every file whose extension names an input of some
//! kind, in name order.

use std::path::{Path, PathBuf};

/// Files that hold a task input of some kind: tensors, chat or text, images, audio.
pub const TASK_INPUT_EXTENSIONS: [&str; 7] =
    ["safetensors", "json", "txt", "png", "jpg", "jpeg", "wav"];

/// The task inputs in `dir` (see [`TASK_INPUT_EXTENSIONS`]), in name order. Errors name `flag`
/// and the path: an unreadable directory or file, or a directory without inputs.
pub fn read_dir(dir: &Path, flag: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{flag} {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| TASK_INPUT_EXTENSIONS.contains(&x))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "{flag} {}: no task inputs (*.{})",
            dir.display(),
            TASK_INPUT_EXTENSIONS.join(", *.")
        ));
    }
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(|e| format!("{flag} {}: {e}", f.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inputs_in_name_order_and_names_the_flag_on_errors() {
        let dir = std::env::temp_dir().join(format!("dn-task-inputs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_dir(&dir, "--x-inputs").unwrap_err();
        assert!(
            e.starts_with("--x-inputs ") && e.contains("no task inputs"),
            "{e}"
        );
        std::fs::write(dir.join("b.json"), b"2").unwrap();
        std::fs::write(dir.join("a.safetensors"), b"1").unwrap();
        std::fs::write(dir.join("notes.md"), b"not an input").unwrap();
        assert_eq!(
            read_dir(&dir, "--x-inputs").unwrap(),
            vec![b"1".to_vec(), b"2".to_vec()]
        );
        let missing = dir.join("missing");
        assert!(read_dir(&missing, "--x-inputs")
            .unwrap_err()
            .contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
