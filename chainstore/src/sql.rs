//! One store, two backends: SQLite (the embedded default, a file) and PostgreSQL (`--db
//! postgres://...`, for networks that outgrow one machine). Every query runs through sqlx's `Any`
//! driver, so chainstore, the indexer and the verifier are the same code on both.
//!
//! The SQL is written once, in the subset both dialects share, with `?` placeholders (numbered
//! `$1..$n` before it is sent: PostgreSQL needs them numbered and SQLite accepts either). The few
//! statements the dialects disagree on are chosen per [`Backend`] at their call site.

use sqlx::any::AnyArguments;
use sqlx::{Any, Arguments, Encode, Type};

/// The connection pool of either backend.
pub type Pool = sqlx::AnyPool;
/// One connection of either backend (a transaction derefs to it).
pub type Conn = sqlx::AnyConnection;
/// A row of either backend.
pub type DbRow = sqlx::any::AnyRow;

/// A yes/no column: stored as 0/1 (SQLite has no booleans, and `Any` reads its integers only as
/// integers), or a PostgreSQL boolean expression.
pub fn flag(r: &DbRow, column: &str) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    match r.try_get::<Option<i64>, _>(column) {
        Ok(v) => Ok(v.is_some_and(|v| v != 0)),
        Err(_) => r.try_get::<bool, _>(column),
    }
}

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend of a connection.
    pub fn of(conn: &Conn) -> Backend {
        Backend::named(conn.backend_name())
    }

    /// The backend of a pool.
    pub fn of_pool(pool: &Pool) -> Backend {
        match pool.connect_options().database_url.scheme() {
            "postgres" | "postgresql" => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    fn named(name: &str) -> Backend {
        if name.eq_ignore_ascii_case("postgresql") || name.eq_ignore_ascii_case("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// `sql` with each `?` placeholder outside quotes numbered `$1..$n` (and each `?N` written
/// `$N`), the form both backends accept.
pub fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            // `?N` names its bind: `$N`
            (None, '?') if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            (None, '?') => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A constant SQL string with its `?` placeholders numbered ([`numbered`]), computed once per call
/// site.
#[macro_export]
macro_rules! sql {
    ($s:expr) => {{
        static NUMBERED: ::std::sync::OnceLock<String> = ::std::sync::OnceLock::new();
        NUMBERED.get_or_init(|| $crate::sql::numbered($s)).as_str()
    }};
}

/// A statement built piece by piece (filters, `IN` lists, multi-row `VALUES`), whose binds are
/// written as they are pushed in the backend's own form: numbered `$n` for PostgreSQL (sqlx's
/// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL refuses), plain `?` for
/// SQLite, which looks up each named parameter by a linear scan: a 7,680-value `INSERT` with `$n`
/// spent 59% of the backfill's time in `sqlite3_bind_parameter_name` (15x slower).
pub struct Builder<'a> {
    backend: Backend,
    sql: String,
    args: AnyArguments<'a>,
    binds: usize,
}

impl<'a> Builder<'a> {
    /// A statement for `backend` starting with `init`.
    pub fn new(backend: Backend, init: impl Into<String>) -> Self {
        Builder {
            backend,
            sql: init.into(),
            args: AnyArguments::default(),
            binds: 0,
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, sql: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        self.binds += 1;
        // Encoding into `AnyArguments` only pushes a value: it cannot fail for the types `Any`
        // supports, and `T: Encode<Any>` admits no others.
        let _ = self.args.add(value);
        match self.backend {
            Backend::Sqlite => self.sql.push('?'),
            Backend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.to_string());
            }
        }
        self
    }

    /// Appends `items` separated by `sep`, each written by `item`.
    pub fn push_separated<I, T>(
        &mut self,
        items: I,
        sep: &str,
        mut item: impl FnMut(&mut Self, T),
    ) -> &mut Self
    where
        I: IntoIterator<Item = T>,
    {
        for (i, t) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(sep);
            }
            item(self, t);
        }
        self
    }

    /// Appends `VALUES (..), (..)`: one parenthesised row per item, its values written by
    /// `row`.
    pub fn push_values<I, T>(
        &mut self,
        items: I,
        mut row: impl FnMut(Separated<'_, 'a>, T),
    ) -> &mut Self
    where
        I: IntoIterator<Item = T>,
    {
        self.sql.push_str("VALUES ");
        for (i, t) in items.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.sql.push('(');
            row(
                Separated {
                    builder: self,
                    first: true,
                },
                t,
            );
            self.sql.push(')');
        }
        self
    }

    /// The SQL so far.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The statement, ready to run (the builder keeps its SQL; its binds move into the query).
    pub fn build(&mut self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, std::mem::take(&mut self.args))
    }

    /// The statement as a query mapping rows to `O`.
    pub fn build_query_as<O>(&mut self) -> sqlx::query::QueryAs<'_, Any, O, AnyArguments<'_>>
    where
        O: for<'r> sqlx::FromRow<'r, DbRow>,
    {
        sqlx::query_as_with(&self.sql, std::mem::take(&mut self.args))
    }

    /// The statement as a query of one value per row.
    pub fn build_query_scalar<O>(
        &mut self,
    ) -> sqlx::query::QueryScalar<'_, Any, O, AnyArguments<'_>>
    where
        (O,): for<'r> sqlx::FromRow<'r, DbRow>,
    {
        sqlx::query_scalar_with(&self.sql, std::mem::take(&mut self.args))
    }
}

/// The values of one row of [`Builder::push_values`], separated by commas.
pub struct Separated<'b, 'a> {
    builder: &'b mut Builder<'a>,
    first: bool,
}

impl<'a> Separated<'_, 'a> {
    /// Appends a placeholder bound to `value`, after a comma unless it is the row's first.
    pub fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'a + Encode<'a, Any> + Type<Any>,
    {
        if !self.first {
            self.builder.sql.push_str(", ");
        }
        self.first = false;
        self.builder.push_bind(value);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)"
        );
        assert_eq!(numbered("SELECT \"?\" FROM t"), "SELECT \"?\" FROM t");
        assert_eq!(numbered("no binds"), "no binds");
        assert_eq!(numbered("a = ?1 OR b = ?1"), "a = $1 OR b = $1");
    }

    #[test]
    fn builder_numbers_binds_as_pushed() {
        let mut b = Builder::new(Backend::Postgres, "SELECT * FROM t WHERE a = ");
        b.push_bind(1_i64).push(" AND b IN (");
        b.push_separated(["x", "y"], ", ", |b, v| {
            b.push_bind(v);
        });
        b.push(")");
        assert_eq!(b.sql(), "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)");
        let mut v = Builder::new(Backend::Postgres, "INSERT INTO t (a, b) ");
        v.push_values([(1_i64, "p"), (2, "q")], |mut row, (a, b)| {
            row.push_bind(a).push_bind(b);
        });
        assert_eq!(v.sql(), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        let mut l = Builder::new(Backend::Sqlite, "INSERT INTO t (a, b) ");
        l.push_values([(1_i64, "p"), (2, "q")], |mut row, (a, b)| {
            row.push_bind(a).push_bind(b);
        });
        assert_eq!(l.sql(), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }
}
