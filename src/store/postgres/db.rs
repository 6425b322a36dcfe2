//! [`PgDb`]: the store's statements on PostgreSQL, from a blocking thread. Each call blocks
//! on the daemon's runtime; the connection is made again after it broke (a server
//! restart), so a replica rides out an outage with failed calls, not a dead daemon.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use tokio::runtime::Handle;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

use super::{PgSettings, connect, failover, lease};
use crate::store::StoreError;
use crate::store::db::{Db, DbRow, Engine, Fence, ToValue, Value, numbered_to_dollar};

pub struct PgDb {
    settings: PgSettings,
    handle: Handle,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    in_transaction: bool,
    fence: Option<Fence>,
}

impl PgDb {
    /// Connects now (from a blocking thread, or before the runtime's threads are busy).
    pub fn connect(settings: PgSettings, handle: Handle) -> Result<PgDb, StoreError> {
        let mut db = PgDb {
            settings,
            handle,
            client: None,
            statements: HashMap::new(),
            in_transaction: false,
            fence: None,
        };
        db.client()?;
        Ok(db)
    }

    fn client(&mut self) -> Result<&Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = None;
            if self.in_transaction {
                self.in_transaction = false;
                return Err(StoreError::Postgres {
                    message:
                        "the connection broke during a transaction; nothing of it was committed"
                            .into(),
                    code: None,
                });
            }
            let client = self.handle.block_on(connect(&self.settings))?;
            self.client = Some(client);
        }
        Ok(self.client.as_ref().expect("connected above"))
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        // Connected first: a connection that broke takes its prepared statements with it.
        self.client()?;
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let translated = numbered_to_dollar(sql);
        let handle = self.handle.clone();
        let client = self.client()?;
        let prepared = handle.block_on(client.prepare(&translated));
        let statement = self.checked(prepared)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let handle = self.handle.clone();
        let client = self.client()?;
        let done = handle.block_on(client.batch_execute(sql));
        self.checked(done)
    }

    /// `result` as the store's, after dropping the connection if the error says it is of
    /// no further use (the server went away or turned read-only): the next call connects
    /// again, to whichever server is the primary by then.
    fn checked<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        result.map_err(|error| {
            let error = StoreError::from(error);
            self.forget_if_broken(&error);
            error
        })
    }

    fn forget_if_broken(&mut self, error: &StoreError) {
        if let StoreError::Postgres { code, .. } = error
            && failover::breaks_connection(code.as_deref())
        {
            self.statements.clear();
            self.client = None;
        }
    }

    fn check_fence(&mut self) -> Result<(), StoreError> {
        let Some(fence) = self.fence.clone() else {
            return Ok(());
        };
        let handle = self.handle.clone();
        let client = self.client()?;
        match handle.block_on(lease::fence(client, &fence.lease, fence.token)) {
            Ok(()) => Ok(()),
            Err(lease::FenceError::Lost { name, token }) => {
                Err(StoreError::Fenced { lease: name, token })
            }
            Err(lease::FenceError::Db(error)) => {
                self.forget_if_broken(&error);
                Err(error)
            }
        }
    }

    /// Prepares `sql` (once per connection), binds `params` and hands both to `go`.
    fn call<T>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        go: impl FnOnce(
            &Handle,
            &Client,
            &Statement,
            &[&(dyn ToSql + Sync)],
        ) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        let statement = self.statement(sql)?;
        let handle = self.handle.clone();
        let client = self.client()?;
        let refs: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let done = go(&handle, client, &statement, &refs);
        self.checked(done)
    }

    /// A write outside a transaction on a fenced connection gets a fenced one of its own.
    fn needs_own_transaction(&self) -> bool {
        self.fence.is_some() && !self.in_transaction
    }
}

impl Db for PgDb {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize, StoreError> {
        if self.needs_own_transaction() {
            return (self as &mut dyn Db).transaction(|tx| tx.execute(sql, params));
        }
        let changed = self.call(sql, params, |handle, client, statement, values| {
            handle.block_on(client.execute(statement, values))
        })?;
        Ok(changed as usize)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        each: &mut dyn FnMut(DbRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // Anything but a plain SELECT writes (UPDATE ... RETURNING).
        let head = sql.trim_start().get(..6).unwrap_or_default();
        let writes = !head.eq_ignore_ascii_case("SELECT");
        if writes && self.needs_own_transaction() {
            return (self as &mut dyn Db).transaction(|tx| tx.query_each(sql, params, each));
        }
        let rows = self.call(sql, params, |handle, client, statement, values| {
            handle.block_on(client.query(statement, values))
        })?;
        for read in &rows {
            each(row(read)?)?;
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        self.batch("BEGIN")?;
        self.in_transaction = true;
        if let Err(error) = self.check_fence() {
            let _ = self.rollback();
            return Err(error);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        let result = self.batch("COMMIT");
        self.in_transaction = false;
        result
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        self.in_transaction = false;
        if self.client.as_ref().is_none_or(Client::is_closed) {
            return Ok(());
        }
        self.batch("ROLLBACK")
    }

    fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    fn set_fence(&mut self, fence: Option<Fence>) {
        self.fence = fence;
    }

    fn lock(&mut self, key: i64) -> Result<(), StoreError> {
        self.query(
            "SELECT 1 FROM (SELECT pg_advisory_xact_lock(?1)) AS locked",
            &[&key],
        )?;
        Ok(())
    }
}

fn row(row: &tokio_postgres::Row) -> Result<DbRow, StoreError> {
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt(e.to_string());
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(corrupt)?
                .map(Value::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(corrupt)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(corrupt)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(corrupt)?
                .map(|v| Value::Int(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(corrupt)?
                .map(Value::Real),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
                .try_get::<_, Option<String>>(i)
                .map_err(corrupt)?
                .map(Value::Text),
            ref other => {
                return Err(StoreError::Corrupt(format!(
                    "column {} has type {other}, which the store does not read",
                    column.name()
                )));
            }
        };
        values.push(value.unwrap_or(Value::Null));
    }
    Ok(DbRow(values))
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                _ => i.to_string().to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
