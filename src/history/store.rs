//! The two backends behind one [`Store`]: the same SQL (`$n` parameters, which SQLite also
//! reads) runs on a SQLite file or on PostgreSQL; only the column types of the DDL differ.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use super::{HistoryError, NewRun, Series, SeriesPoint, StoredRun, LAYOUT_VERSION};

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A history database, opened (and its tables created when missing).
pub struct Store {
    pool: Pool,
    /// The file or the URL without its password: for messages.
    target: String,
}

/// Runs the same code on whichever pool the store has (the row and pool types differ, the
/// SQL does not).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

const RUN_COLUMNS: &str = "id, scenario, load_hash, environment, commit_sha, started_at, \
     started_ms, status, source, external_id, accepted, recorded_at";

/// The comparable-runs condition for `$1` scenario, `$2` environment, `$3` load hash (NULL:
/// any), `$4`/`$5` the judged run's time and id (runs up to and including it).
const COMPARABLE: &str = "r.scenario = $1 AND r.environment = $2 \
     AND ($3 IS NULL OR r.load_hash IS NULL OR r.load_hash = $3) \
     AND (r.started_ms < $4 OR (r.started_ms = $4 AND r.id <= $5))";

fn ddl(postgres: bool) -> Vec<String> {
    let id = if postgres {
        "BIGSERIAL PRIMARY KEY"
    } else {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    };
    vec![
        "CREATE TABLE IF NOT EXISTS peakload_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            .to_string(),
        format!(
            "CREATE TABLE IF NOT EXISTS peakload_runs (
                id {id},
                scenario TEXT NOT NULL,
                load_hash TEXT,
                environment TEXT NOT NULL,
                commit_sha TEXT,
                started_at TEXT NOT NULL,
                started_ms BIGINT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                external_id TEXT,
                accepted BIGINT NOT NULL DEFAULT 0,
                recorded_at TEXT NOT NULL
            )"
        ),
        "CREATE INDEX IF NOT EXISTS peakload_runs_series \
         ON peakload_runs (scenario, environment, started_ms)"
            .to_string(),
        "CREATE TABLE IF NOT EXISTS peakload_values (
            run_id BIGINT NOT NULL REFERENCES peakload_runs (id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            metric TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, scope, metric)
        )"
        .to_string(),
        "CREATE TABLE IF NOT EXISTS peakload_histograms (
            run_id BIGINT NOT NULL REFERENCES peakload_runs (id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            requests BIGINT NOT NULL,
            errors BIGINT NOT NULL,
            histogram TEXT NOT NULL,
            PRIMARY KEY (run_id, scope)
        )"
        .to_string(),
    ]
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The URL with any password replaced, for messages.
fn redacted(db: &str) -> String {
    match (db.find("://"), db.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &db[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &db[..scheme + 3], &db[at..]),
                None => db.to_string(),
            }
        }
        _ => db.to_string(),
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

impl Store {
    /// Opens `db`: a `postgres://` URL, or else a SQLite file path (`sqlite://` prefix
    /// optional), created when missing. Creates the tables when missing; refuses a newer
    /// table layout.
    pub async fn open(db: &str) -> Result<Store, HistoryError> {
        let target = redacted(db);
        let err = |source| HistoryError::Database {
            target: target.clone(),
            source,
        };
        let pool = if is_postgres(db) {
            let options = PgConnectOptions::from_str(db).map_err(err)?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(std::time::Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .map_err(err)?,
            )
        } else {
            let path = db.strip_prefix("sqlite://").unwrap_or(db);
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10))
                .foreign_keys(true);
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options)
                    .await
                    .map_err(err)?,
            )
        };
        let store = Store { pool, target };
        store.migrate().await?;
        Ok(store)
    }

    /// The database, for messages (no password).
    pub fn target(&self) -> &str {
        &self.target
    }

    fn err(&self, source: sqlx::Error) -> HistoryError {
        HistoryError::Database {
            target: self.target.clone(),
            source,
        }
    }

    async fn migrate(&self) -> Result<(), HistoryError> {
        let postgres = matches!(self.pool, Pool::Postgres(_));
        on_pool!(self, pool => {
            for statement in ddl(postgres) {
                sqlx::query(&statement).execute(pool).await.map_err(|e| self.err(e))?;
            }
            let found: Option<String> =
                sqlx::query_scalar("SELECT value FROM peakload_meta WHERE key = 'layout_version'")
                    .fetch_optional(pool)
                    .await
                    .map_err(|e| self.err(e))?;
            match found {
                Some(v) => {
                    let found = v.parse::<i64>().unwrap_or(i64::MAX);
                    if found > LAYOUT_VERSION {
                        return Err(HistoryError::Layout {
                            target: self.target.clone(),
                            found,
                        });
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO peakload_meta (key, value) VALUES ('layout_version', $1) \
                         ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(LAYOUT_VERSION.to_string())
                    .execute(pool)
                    .await
                    .map_err(|e| self.err(e))?;
                }
            }
            Ok(())
        })
    }

    /// Records a run with its values and histograms, in one transaction; returns its id.
    pub async fn add(&self, run: &NewRun) -> Result<i64, HistoryError> {
        let recorded_at = now_rfc3339();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(|e| self.err(e))?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO peakload_runs (scenario, load_hash, environment, commit_sha, \
                 started_at, started_ms, status, source, external_id, accepted, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10) RETURNING id",
            )
            .bind(&run.scenario)
            .bind(&run.load_hash)
            .bind(&run.environment)
            .bind(&run.commit)
            .bind(&run.started_at)
            .bind(run.started_ms)
            .bind(&run.status)
            .bind(&run.source)
            .bind(&run.external_id)
            .bind(&recorded_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            for v in &run.values {
                sqlx::query(
                    "INSERT INTO peakload_values (run_id, scope, metric, value) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(&v.scope)
                .bind(&v.metric)
                .bind(v.value)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            for h in &run.histograms {
                sqlx::query(
                    "INSERT INTO peakload_histograms (run_id, scope, requests, errors, histogram) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(&h.scope)
                .bind(h.requests)
                .bind(h.errors)
                .bind(&h.histogram)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            }
            tx.commit().await.map_err(|e| self.err(e))?;
            Ok(id)
        })
    }

    /// The id of an imported run already recorded under the same scenario, environment and
    /// external id (so importing a file twice adds nothing twice).
    pub async fn find_imported(
        &self,
        scenario: &str,
        environment: &str,
        external_id: &str,
    ) -> Result<Option<i64>, HistoryError> {
        on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM peakload_runs WHERE scenario = $1 AND environment = $2 \
                 AND external_id = $3 AND source = 'import'",
            )
            .bind(scenario)
            .bind(environment)
            .bind(external_id)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    /// The id of a run from a results file already recorded with the same scenario,
    /// environment and start time (the same results file added twice).
    pub async fn find_recorded(
        &self,
        scenario: &str,
        environment: &str,
        started_at: &str,
    ) -> Result<Option<i64>, HistoryError> {
        on_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT id FROM peakload_runs WHERE scenario = $1 AND environment = $2 \
                 AND started_at = $3 AND source = 'results' ORDER BY id LIMIT 1",
            )
            .bind(scenario)
            .bind(environment)
            .bind(started_at)
            .fetch_optional(pool)
            .await
            .map_err(|e| self.err(e))
        })
    }

    pub async fn run(&self, id: i64) -> Result<StoredRun, HistoryError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM peakload_runs WHERE id = $1");
        on_pool!(self, pool => {
            let row = sqlx::query(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(|e| self.err(e))?
                .ok_or(HistoryError::NoSuchRun(id))?;
            stored_run(&row).map_err(|e| self.err(e))
        })
    }

    /// Runs, oldest first (by start time, then id), optionally of one scenario and
    /// environment; at most `limit`, the newest ones.
    pub async fn list(
        &self,
        scenario: Option<&str>,
        environment: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredRun>, HistoryError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM peakload_runs \
             WHERE ($1 IS NULL OR scenario = $1) AND ($2 IS NULL OR environment = $2) \
             ORDER BY started_ms DESC, id DESC LIMIT $3"
        );
        let mut runs = on_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(scenario)
                .bind(environment)
                .bind(limit)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            rows.iter().map(stored_run).collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))?
        });
        runs.reverse();
        Ok(runs)
    }

    /// Marks `id` as the first run of an accepted level (or takes the mark back).
    pub async fn set_accepted(&self, id: i64, accepted: bool) -> Result<(), HistoryError> {
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE peakload_runs SET accepted = $1 WHERE id = $2")
                .bind(i64::from(accepted))
                .bind(id)
                .execute(pool)
                .await
                .map_err(|e| self.err(e))?
                .rows_affected()
        });
        if done == 0 {
            return Err(HistoryError::NoSuchRun(id));
        }
        Ok(())
    }

    /// A run's gated values: (scope, metric, value), scopes in recorded order.
    pub async fn values(&self, id: i64) -> Result<Vec<(String, String, f64)>, HistoryError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT scope, metric, value FROM peakload_values WHERE run_id = $1 \
                 ORDER BY scope, metric",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            rows.iter()
                .map(|r| Ok((r.try_get("scope")?, r.try_get("metric")?, r.try_get("value")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.err(e))
        })
    }

    /// A run's histograms: (scope, requests, errors, base64 HdrHistogram V2).
    pub async fn histograms(
        &self,
        id: i64,
    ) -> Result<Vec<(String, i64, i64, String)>, HistoryError> {
        on_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT scope, requests, errors, histogram FROM peakload_histograms \
                 WHERE run_id = $1 ORDER BY scope",
            )
            .bind(id)
            .fetch_all(pool)
            .await
            .map_err(|e| self.err(e))?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("scope")?,
                        r.try_get("requests")?,
                        r.try_get("errors")?,
                        r.try_get("histogram")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.err(e))
        })
    }

    /// Every metric series of the runs comparable with `run` (same scenario and environment,
    /// the same load shape or an unknown one), up to and including `run`, oldest first.
    pub async fn series_until(&self, run: &StoredRun) -> Result<Vec<Series>, HistoryError> {
        let sql = format!(
            "SELECT r.id, r.started_at, r.accepted, v.scope, v.metric, v.value \
             FROM peakload_values v JOIN peakload_runs r ON r.id = v.run_id \
             WHERE {COMPARABLE} ORDER BY r.started_ms, r.id"
        );
        let rows: Vec<(i64, String, bool, String, String, f64)> = on_pool!(self, pool => {
            let rows = sqlx::query(&sql)
                .bind(&run.scenario)
                .bind(&run.environment)
                .bind(&run.load_hash)
                .bind(run.started_ms)
                .bind(run.id)
                .fetch_all(pool)
                .await
                .map_err(|e| self.err(e))?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("started_at")?,
                        r.try_get::<i64, _>("accepted")? != 0,
                        r.try_get("scope")?,
                        r.try_get("metric")?,
                        r.try_get("value")?,
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(|e| self.err(e))?
        });
        let mut series: Vec<Series> = Vec::new();
        for (run_id, started_at, accepted, scope, metric, value) in rows {
            let point = SeriesPoint {
                run_id,
                started_at,
                value,
                accepted,
            };
            match series
                .iter_mut()
                .find(|s| s.scope == scope && s.metric == metric)
            {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    scope,
                    metric,
                    points: vec![point],
                }),
            }
        }
        Ok(series)
    }

    /// Closes the connections (a SQLite file is then complete on disk, WAL checkpointed).
    pub async fn close(self) {
        on_pool!(self, pool => pool.close().await)
    }
}

fn stored_run<R: Row>(row: &R) -> Result<StoredRun, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(StoredRun {
        id: row.try_get("id")?,
        scenario: row.try_get("scenario")?,
        load_hash: row.try_get("load_hash")?,
        environment: row.try_get("environment")?,
        commit: row.try_get("commit_sha")?,
        started_at: row.try_get("started_at")?,
        started_ms: row.try_get("started_ms")?,
        status: row.try_get("status")?,
        source: row.try_get("source")?,
        external_id: row.try_get("external_id")?,
        accepted: row.try_get::<i64, _>("accepted")? != 0,
        recorded_at: row.try_get("recorded_at")?,
    })
}
