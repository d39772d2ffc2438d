//! Reading result rows by the names of the selected columns, and the typed values that rows
//! of the query layer carry.
//!
//! A query module lists the columns it selects once; the SELECT list is written from that list
//! and each row is read back by name through [`Record`], so the two cannot drift apart.

use chrono::{DateTime, Utc};

use crate::model::time;
use crate::query::tables::{Kind, Table};
use crate::storage::db::{Cell, Query, Row};

/// A timestamp as the storage holds it (naive UTC). Text that does not read as a time, which
/// AiiDA never writes, is kept as it is rather than failing the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timestamp {
    Utc(DateTime<Utc>),
    Unreadable(String),
}

impl Timestamp {
    /// Reads a time cell selected with [`Query::time_text`]; `None` for NULL.
    pub fn from_cell(cell: Cell) -> Option<Self> {
        let text = cell.into_string()?;
        Some(match time::parse_stored(&text) {
            Some(dt) => Self::Utc(dt),
            None => Self::Unreadable(text),
        })
    }
}

/// Appends the SELECT expression of `column` of `entity` (qualified by the entity alias):
/// UUIDs, times and JSON as text, the forms [`Record`] reads.
pub(crate) fn push_select(q: &mut Query, entity: &Table, name: &str) {
    let column = entity.column(name).expect("selected names are columns");
    let qualified = entity.qualified(column.name);
    match column.kind {
        Kind::Uuid => q.uuid_text(&qualified),
        Kind::Time => q.time_text(&qualified),
        Kind::Json => q.json_text(&qualified),
        Kind::Int | Kind::Text => q.push(&qualified),
    };
}

/// Appends `expr1, expr2, ...` for `names` of `entity`.
pub(crate) fn push_selects(q: &mut Query, entity: &Table, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        push_select(q, entity, name);
    }
}

/// One result row, read by the names of the columns it was selected with.
pub(crate) struct Record<'n> {
    names: &'n [&'n str],
    cells: Vec<Cell>,
}

impl<'n> Record<'n> {
    /// `names` are the selected columns, in SELECT order.
    pub(crate) fn new(names: &'n [&'n str], cells: Row) -> Self {
        debug_assert_eq!(names.len(), cells.len(), "one name per selected column");
        Self { names, cells }
    }

    /// The cell of column `name` (NULL when the row is shorter than the SELECT list).
    pub(crate) fn take(&mut self, name: &str) -> Cell {
        let index = self.names.iter().position(|n| *n == name);
        debug_assert!(index.is_some(), "column {name} is not selected");
        index.and_then(|i| self.cells.get_mut(i)).map(|cell| std::mem::replace(cell, Cell::Null)).unwrap_or(Cell::Null)
    }

    /// The cell of column `name` if it was selected.
    pub(crate) fn selected(&mut self, name: &str) -> Option<Cell> {
        self.names.contains(&name).then(|| self.take(name))
    }

    pub(crate) fn int(&mut self, name: &str) -> Option<i64> {
        self.take(name).as_i64()
    }

    pub(crate) fn text(&mut self, name: &str) -> Option<String> {
        self.take(name).into_string()
    }

    pub(crate) fn time(&mut self, name: &str) -> Option<Timestamp> {
        Timestamp::from_cell(self.take(name))
    }
}
