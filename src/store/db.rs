//! One way to speak SQL to either engine: the store's modules write their statements once,
//! with `?1`-style parameters and the SQL both SQLite and PostgreSQL understand, against
//! [`Db`]; `sqlite` and `postgres` carry them out. Values cross as the few types the
//! schema uses: 64-bit integers (booleans as 0/1), text, and NULL.

use super::StoreError;
use crate::domain::Status;

/// A value bound to a parameter or read from a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// A leader's lease, checked at the start of each of its transactions: once another
/// replica took the lease over, they fail and commit nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub token: i64,
}

/// Which engine a [`Db`] talks to, for the few statements that differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection to the store's database, on a blocking thread.
pub trait Db: Send {
    fn engine(&self) -> Engine;
    /// Runs a statement that returns no rows; returns how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize, StoreError>;
    /// Runs a statement and hands each row to `each` as it is read (SQLite reads them
    /// one at a time, so a large result is never held whole).
    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        each: &mut dyn FnMut(DbRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Runs a statement and returns all its rows.
    fn query(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<Vec<DbRow>, StoreError> {
        let mut rows = Vec::new();
        self.query_each(sql, params, &mut |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }
    /// Opens a transaction; with a fence set, first checks that this replica still leads.
    fn begin(&mut self) -> Result<(), StoreError>;
    fn commit(&mut self) -> Result<(), StoreError>;
    fn rollback(&mut self) -> Result<(), StoreError>;
    fn in_transaction(&self) -> bool;
    /// Inside a transaction, waits for and holds a lock on `key` until it ends, so that
    /// replicas do one thing (form a channel's digests) one at a time. SQLite has one
    /// writer anyway.
    /// Sets or clears the lease every transaction checks first (PostgreSQL).
    fn set_fence(&mut self, _fence: Option<Fence>) {}
    fn lock(&mut self, _key: i64) -> Result<(), StoreError> {
        Ok(())
    }
}

impl dyn Db + '_ {
    /// Each row of the statement turned into a `T` by `f`, as it is read.
    pub fn query_map<T>(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        mut f: impl FnMut(&DbRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut mapped = Vec::new();
        self.query_each(sql, params, &mut |row| {
            mapped.push(f(&row)?);
            Ok(())
        })?;
        Ok(mapped)
    }

    /// The statement's first row, if any.
    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
    ) -> Result<Option<DbRow>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The statement's only row (an aggregate, a count).
    pub fn query_one(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<DbRow, StoreError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| StoreError::Corrupt(format!("no row from: {sql}")))
    }

    /// Runs `work` in one transaction: committed if it returns `Ok`, rolled back if not.
    /// Inside a transaction already, `work` joins it.
    pub fn transaction<T>(
        &mut self,
        work: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.in_transaction() {
            return work(self);
        }
        self.begin()?;
        match work(self) {
            Ok(value) => {
                self.commit()?;
                Ok(value)
            }
            Err(error) => {
                // The error that made us give up is the one worth reporting.
                let _ = self.rollback();
                Err(error)
            }
        }
    }
}

/// A row read, its columns in the statement's order.
#[derive(Clone, Debug, PartialEq)]
pub struct DbRow(pub Vec<Value>);

impl DbRow {
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T, StoreError> {
        let value = self
            .0
            .get(index)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {index}")))?;
        T::from_value(value).map_err(|why| StoreError::Corrupt(format!("column {index}: {why}")))
    }
}

pub trait ToValue {
    fn to_value(&self) -> Value;
}

pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Result<Self, ValueError>;
}

/// Why a stored value is not what its column should hold.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("expected {expected}, found {found}")]
    Type {
        expected: &'static str,
        found: String,
    },
    #[error("{0} is out of range")]
    OutOfRange(i64),
    #[error("{found:?} is not {expected}")]
    Unknown {
        expected: &'static str,
        found: String,
    },
}

fn wrong_type(expected: &'static str, found: &Value) -> ValueError {
    ValueError::Type {
        expected,
        found: format!("{found:?}"),
    }
}

impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}

impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}

impl ToValue for u32 {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for usize {
    fn to_value(&self) -> Value {
        Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
    }
}

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}

impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl ToValue for std::borrow::Cow<'_, str> {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl ToValue for Status {
    fn to_value(&self) -> Value {
        Value::Text(self.as_str().to_owned())
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Int(i) => Ok(*i),
            other => Err(wrong_type("an integer", other)),
        }
    }
}

impl FromValue for u32 {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        let i = i64::from_value(value)?;
        u32::try_from(i).map_err(|_| ValueError::OutOfRange(i))
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        Ok(i64::from_value(value)? != 0)
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            other => Err(wrong_type("a number", other)),
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Text(s) => Ok(s.clone()),
            other => Err(wrong_type("text", other)),
        }
    }
}

impl FromValue for Status {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        Ok(Status::parse(&String::from_value(value)?))
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Result<Self, ValueError> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// `?1`, `?2`... as PostgreSQL's `$1`, `$2`...; the store's statements put no `?` in a
/// string literal.
pub fn numbered_to_dollar(sql: &str) -> String {
    sql.replace('?', "$")
}

/// SQLite: the connection itself.
impl Db for rusqlite::Connection {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[&dyn ToValue]) -> Result<usize, StoreError> {
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        Ok(self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(values.iter()))?)
    }

    fn query_each(
        &mut self,
        sql: &str,
        params: &[&dyn ToValue],
        each: &mut dyn FnMut(DbRow) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        use rusqlite::types::ValueRef;
        let values: Vec<Value> = params.iter().map(|p| p.to_value()).collect();
        let mut statement = self.prepare_cached(sql)?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(values.iter()))?;
        while let Some(row) = rows.next()? {
            let mut read = Vec::with_capacity(columns);
            for i in 0..columns {
                read.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            each(DbRow(read))?;
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.execute_batch("BEGIN")?)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.execute_batch("COMMIT")?)
    }

    fn rollback(&mut self) -> Result<(), StoreError> {
        Ok(self.execute_batch("ROLLBACK")?)
    }

    fn in_transaction(&self) -> bool {
        !self.is_autocommit()
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::from(*i),
            Value::Real(f) => ToSqlOutput::from(*f),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}
