//! For test suites only (feature `testing`, a dev-dependency of the indexer and the verifier):
//! the database a test runs on, an SQLite file or, with `DN_TEST_DB=postgres`, a database on a
//! throwaway PostgreSQL server (`tools/pg.sh`).

/// Where a test's database lives: the file `name` in `dir`, or, with `DN_TEST_DB=postgres`, a
/// database on the test PostgreSQL server (`tools/pg.sh`, started on first use), created empty
/// the first time this process names that file: `make test` runs the indexer's suites once on
/// each.
pub fn db_spec(dir: &std::path::Path, name: &str) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DATABASES: OnceLock<Mutex<HashMap<std::path::PathBuf, String>>> = OnceLock::new();
    match std::env::var("DN_TEST_DB").as_deref() {
        Ok("postgres") => DATABASES
            .get_or_init(Default::default)
            .lock()
            .unwrap()
            .entry(dir.join(name))
            .or_insert_with(pg_database)
            .clone(),
        Ok("sqlite") | Ok("") | Err(_) => dir.join(name).to_str().unwrap().to_string(),
        Ok(other) => panic!("DN_TEST_DB={other}: expected sqlite or postgres"),
    }
}

/// A new, empty database on the test PostgreSQL server, as a URL.
pub fn pg_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::OnceLock;
    static SERVER: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = SERVER.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/pg.sh");
        let out = std::process::Command::new(script)
            .arg("start")
            .output()
            .expect("tools/pg.sh runs");
        assert!(
            out.status.success(),
            "tools/pg.sh start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    });
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let out = std::process::Command::new("psql")
        .args([server.as_str(), "-qc", &format!("CREATE DATABASE {name}")])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "CREATE DATABASE {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = server.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}
