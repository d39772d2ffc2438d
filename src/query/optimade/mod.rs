//! OPTIMADE's `structures`: every StructureData of a storage as an entry whose properties
//! (`entry`) are derived once per storage into an in-memory [`Index`], searched with the
//! filter language's tree (`filter`), sorted and paged here.
//!
//! The index is built from one query over the StructureData nodes (with the process that
//! created each) and kept by [`StructureIndex`] until the database fingerprint moves: never for
//! an archive, at the next change of a profile. Nothing is written into the storage.

pub mod entry;
pub mod filter;

use std::collections::HashMap;
use std::sync::Arc;

pub use entry::{Entry, PROPERTIES, Prop, PropType, PropertyDef};
pub use filter::{Checked, Comparison, Filter, FilterError, Literal, Op};

use crate::query::error::{QueryError, QueryResult};
use crate::query::rows::{Record, Timestamp};
use crate::storage::db::Db;

/// The node type of StructureData.
pub const STRUCTURE_TYPE: &str = "data.core.structure.StructureData.";

/// The entries of one storage, in node id order.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Entry>,
    by_uuid: HashMap<String, usize>,
    /// StructureData nodes whose attributes could not be read as a structure (left out).
    pub skipped: usize,
}

impl Index {
    /// The index of `entries` (in the order given).
    pub fn new(entries: Vec<Entry>, skipped: usize) -> Index {
        let by_uuid = entries.iter().enumerate().map(|(i, e)| (e.node.uuid.clone(), i)).collect();
        Index { entries, by_uuid, skipped }
    }

    /// The entry with id (UUID) `id`.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.by_uuid.get(id).map(|&i| &self.entries[i])
    }

    /// The entries matching `filter` (all without one), ordered by `sort` (then by node id).
    pub fn search(&self, filter: Option<&Filter>, sort: &[SortKey]) -> Vec<usize> {
        let mut found: Vec<usize> = match filter {
            Some(f) => {
                let prepared = filter::Prepared::new(f);
                (0..self.entries.len()).filter(|&i| prepared.matches(&self.entries[i])).collect()
            }
            None => (0..self.entries.len()).collect(),
        };
        if !sort.is_empty() {
            found.sort_by(|&a, &b| {
                let (a, b) = (&self.entries[a], &self.entries[b]);
                sort.iter()
                    .map(|key| {
                        let o = sort_cmp(a.get(&key.property), b.get(&key.property));
                        if key.descending { o.reverse() } else { o }
                    })
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        }
        found
    }
}

/// One key of `sort`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub property: String,
    pub descending: bool,
}

/// Checks the keys of `sort`: each a sortable property of the entries (400 otherwise).
pub fn check_sort(keys: &[SortKey]) -> QueryResult<()> {
    for key in keys {
        match entry::property(&key.property) {
            Some(def) if def.sortable => {}
            Some(_) => {
                return Err(QueryError::bad_request(format!("The property '{}' is not sortable.", key.property)));
            }
            None => return Err(QueryError::bad_request(format!("Unknown property '{}' in sort.", key.property))),
        }
    }
    Ok(())
}

/// Ascending order of two scalar values; unknown values last.
fn sort_cmp(a: Option<Prop<'_>>, b: Option<Prop<'_>>) -> std::cmp::Ordering {
    let rank = |p: &Option<Prop<'_>>| match p {
        Some(Prop::Null) | None => 1,
        _ => 0,
    };
    match (a, b) {
        (Some(Prop::Str(x)), Some(Prop::Str(y))) => x.cmp(y),
        (Some(Prop::Int(x)), Some(Prop::Int(y))) => x.cmp(&y),
        (Some(Prop::Float(x)), Some(Prop::Float(y))) => x.total_cmp(&y),
        (Some(Prop::Time(x)), Some(Prop::Time(y))) => x.cmp(&y),
        (a, b) => rank(&a).cmp(&rank(&b)),
    }
}

/// The index of a storage, built on first use and kept while the database fingerprint stays.
#[derive(Default)]
pub struct StructureIndex {
    current: tokio::sync::Mutex<Option<(String, Arc<Index>)>>,
}

impl StructureIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index of `db` now: the kept one while the fingerprint is unchanged, else built
    /// (once, whatever the number of requests waiting for it).
    pub async fn get(&self, db: &Db) -> QueryResult<Arc<Index>> {
        let fingerprint = db.fingerprint().await;
        let mut current = self.current.lock().await;
        if let (Some(fp), Some((kept, index))) = (&fingerprint, &*current)
            && fp == kept
        {
            return Ok(index.clone());
        }
        let index = Arc::new(load(db).await?);
        if let Some(fp) = fingerprint {
            *current = Some((fp, index.clone()));
        }
        Ok(index)
    }
}

/// How many nodes one query of [`load`] reads.
const CHUNK: i64 = 5_000;

/// Reads every StructureData and derives its entry, [`CHUNK`] nodes per query (by id), so that
/// the attributes of a large database are never all in memory as text at once.
pub async fn load(db: &Db) -> QueryResult<Index> {
    let mut entries = Vec::new();
    let mut skipped = 0;
    let mut after = i64::MIN;
    loop {
        let rows = chunk(db, after).await?;
        let Some(last) = rows.last().and_then(|r| r.first()).and_then(|c| c.as_i64()) else { break };
        let full = rows.len() as i64 >= CHUNK;
        after = last;
        let (mut more, skip) = tokio::task::spawn_blocking(move || derive_rows(rows))
            .await
            .map_err(|e| QueryError::Internal(format!("building the structure index failed: {e}")))?;
        entries.append(&mut more);
        skipped += skip;
        if !full {
            break;
        }
    }
    Ok(Index::new(entries, skipped))
}

const NAMES: [&str; 7] = ["id", "uuid", "label", "ctime", "mtime", "attributes", "creator"];

/// The next [`CHUNK`] StructureData nodes with an id above `after`, with their creators.
async fn chunk(db: &Db, after: i64) -> QueryResult<Vec<crate::storage::db::Row>> {
    let mut q = db.query();
    q.push("SELECT n.id, ").uuid_text("n.uuid").push(", n.label, ").time_text("n.ctime").push(", ");
    q.time_text("n.mtime").push(", ").json_text("n.attributes").push(", ").uuid_text("p.uuid");
    q.push(" FROM db_dbnode n LEFT JOIN db_dblink l ON l.output_id = n.id AND l.type = ").bind_text("create");
    q.push(" LEFT JOIN db_dbnode p ON p.id = l.input_id WHERE n.node_type = ").bind_text(STRUCTURE_TYPE);
    q.push(" AND n.id > ").bind_int(after).push(" ORDER BY n.id LIMIT ").bind_int(CHUNK);
    Ok(db.fetch_all(q).await?)
}

/// The entries of rows read by [`chunk`], and how many could not be read as structures.
fn derive_rows(rows: Vec<crate::storage::db::Row>) -> (Vec<Entry>, usize) {
    let mut entries = Vec::with_capacity(rows.len());
    let mut skipped = 0;
    let mut last = None;
    for row in rows {
        let mut r = Record::new(&NAMES, row);
        let pk = r.int("id").unwrap_or_default();
        // A node with two `create` links appears twice; the first is kept.
        if last == Some(pk) {
            continue;
        }
        last = Some(pk);
        let time = |t: Option<Timestamp>| match t {
            Some(Timestamp::Utc(t)) => Some(t),
            _ => None,
        };
        let node = entry::NodeColumns {
            pk,
            uuid: r.text("uuid").unwrap_or_default(),
            label: r.text("label").unwrap_or_default(),
            ctime: time(r.time("ctime")),
            mtime: time(r.time("mtime")),
            creator: r.text("creator"),
        };
        let attributes = r.text("attributes").unwrap_or_default();
        match Entry::derive(node, &attributes) {
            Ok(entry) => entries.push(entry),
            Err(_) => skipped += 1,
        }
    }
    (entries, skipped)
}
