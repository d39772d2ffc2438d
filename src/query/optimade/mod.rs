//! OPTIMADE's `structures`: every StructureData of a storage as an entry whose properties
//! (`entry`) are derived once per storage into an in-memory [`Index`], searched with the
//! filter language's tree (`filter`), sorted and paged here.
//!
//! The index is built from one query over the StructureData nodes (with the process that
//! created each) and kept by [`StructureIndex`] until the database fingerprint moves: never for
//! an archive, at the next change of a profile. A change is then read as a change, not as a new
//! database ([`refresh`]): new structures are derived and appended, and what can change in the
//! others is read again only when they changed. Nothing is written into the storage.

pub mod entry;
pub mod filter;

use std::collections::HashMap;
use std::sync::Arc;

pub use entry::{Entry, PROPERTIES, Prop, PropType, PropertyDef};
pub use filter::{Checked, Comparison, Filter, FilterError, Literal, Op};

use chrono::{DateTime, Utc};

use crate::query::error::{QueryError, QueryResult};
use crate::query::rows::{Record, Timestamp};
use crate::storage::db::Db;

/// The node type of StructureData.
pub const STRUCTURE_TYPE: &str = "data.core.structure.StructureData.";

/// The entries of one storage, in node id order.
#[derive(Debug, Default)]
pub struct Index {
    /// Shared with the index that follows this one after a change ([`refresh`]).
    pub entries: Vec<Arc<Entry>>,
    by_uuid: HashMap<String, usize>,
    /// The ids and UUIDs of the StructureData nodes whose attributes could not be read as a
    /// structure (left out), in id order.
    pub skipped: Vec<(i64, String)>,
    /// How many entries were derived from their attributes for this index: all of them when
    /// it was built afresh, the new structures only after a [`refresh`].
    pub derived: usize,
    /// The StructureData rows read (entries and skipped alike).
    rows: Rows,
}

/// What [`refresh`] checks of the rows an index was read from.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Rows {
    count: i64,
    /// The sum of their ids: a row that came late (an id below others already read) and a
    /// row deleted leave the count as it was, not the sum.
    id_sum: i64,
    last_id: i64,
    /// The latest `mtime` among them (AiiDA sets it on every change of a stored node).
    latest: Option<DateTime<Utc>>,
}

impl Rows {
    fn add(&mut self, node: &entry::NodeColumns) {
        self.count += 1;
        self.id_sum = self.id_sum.wrapping_add(node.pk);
        self.last_id = self.last_id.max(node.pk);
        self.latest = self.latest.max(node.mtime);
    }

    fn and(self, more: Rows) -> Rows {
        Rows {
            count: self.count + more.count,
            id_sum: self.id_sum.wrapping_add(more.id_sum),
            last_id: self.last_id.max(more.last_id),
            latest: self.latest.max(more.latest),
        }
    }
}

/// How long before the latest mtime an index saw a change may still arrive: AiiDA takes a
/// node's mtime from the writer's clock when it flushes, and the transaction may commit
/// later, after a newer change was read (or another machine's clock may be behind).
/// [`refresh`] reads again the structures changed within this margin.
const LATE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

impl Index {
    /// The index of `entries` (in node id order).
    fn new(entries: Vec<Arc<Entry>>, skipped: Vec<(i64, String)>, derived: usize, rows: Rows) -> Index {
        let by_uuid = entries.iter().enumerate().map(|(i, e)| (e.node.uuid.clone(), i)).collect();
        Index { entries, by_uuid, skipped, derived, rows }
    }

    /// The entry with id (UUID) `id`.
    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.by_uuid.get(id).map(|&i| &*self.entries[i])
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
        let index = Arc::new(match &*current {
            Some((_, kept)) => refresh(db, kept).await?,
            None => load(db).await?,
        });
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
    let (entries, skipped, rows) = load_after(db, i64::MIN).await?;
    let derived = entries.len();
    Ok(Index::new(entries.into_iter().map(Arc::new).collect(), skipped, derived, rows))
}

/// The entries of the StructureData nodes with an id above `after`, those skipped, and the
/// rows read.
async fn load_after(db: &Db, mut after: i64) -> QueryResult<(Vec<Entry>, Vec<(i64, String)>, Rows)> {
    let (mut entries, mut skipped, mut rows) = (Vec::new(), Vec::new(), Rows::default());
    loop {
        let read = chunk(db, Columns::All, after).await?;
        let Some(last) = read.last().and_then(|r| r.first()).and_then(|c| c.as_i64()) else { break };
        let full = read.len() as i64 >= CHUNK;
        after = last;
        let (mut more, mut skip, seen) = derive_off_the_worker(read).await?;
        entries.append(&mut more);
        skipped.append(&mut skip);
        rows = rows.and(seen);
        if !full {
            break;
        }
    }
    Ok((entries, skipped, rows))
}

/// The index of the database now, from `kept`, its index before a change.
///
/// A stored StructureData's attributes cannot change (AiiDA refuses to), nor its UUID and
/// ctime; its label can, and AiiDA then moves its mtime; a node can be deleted, and new ones
/// come with higher ids. So:
/// - when the rows up to `kept`'s last one are as many as it read, with the same ids (their
///   sum) and the same latest mtime (one statement over the node type's index), `kept` is
///   still right for them but for changes that committed late: those changed within [`LATE`]
///   of the latest mtime are read again (on the mtime's index). Its other entries are reused,
///   and only the structures after them are read and derived;
/// - otherwise every structure's label, mtime and creator are read again (not its
///   attributes): a kept entry is reused, updated where they changed, left out when its node
///   is gone, and only the structures `kept` has not seen are derived.
///
/// A running daemon's writes thus cost the index one counting statement and the new
/// structures, not every structure's attributes again.
pub async fn refresh(db: &Db, kept: &Index) -> QueryResult<Index> {
    if rows_up_to(db, kept.rows.last_id).await? == kept.rows {
        let mut entries = kept.entries.clone();
        if let Some(latest) = kept.rows.latest {
            let read = recent(db, kept.rows.last_id, latest - LATE).await?;
            for (node, _) in rows_with_nodes(read, &NAMES[..NAMES.len() - 1]) {
                if let Ok(i) = entries.binary_search_by_key(&node.pk, |e| e.node.pk)
                    && entries[i].node.uuid == node.uuid
                {
                    entries[i] = updated(&entries[i], node);
                }
            }
        }
        let (more, mut skipped, after) = load_after(db, kept.rows.last_id).await?;
        let derived = more.len();
        entries.extend(more.into_iter().map(Arc::new));
        let mut all_skipped = kept.skipped.clone();
        all_skipped.append(&mut skipped);
        return Ok(Index::new(entries, all_skipped, derived, kept.rows.and(after)));
    }
    rescan(db, kept).await
}

/// The changing columns of the StructureData nodes up to `last_id` changed since `since`.
async fn recent(db: &Db, last_id: i64, since: DateTime<Utc>) -> QueryResult<Vec<crate::storage::db::Row>> {
    let mut q = select(db, Columns::Changing);
    // The nodes changed since then found first, on the mtime's index: SQLite, without
    // statistics, would read every structure from the node type's index instead (50 ms at
    // 10^6 nodes against 3).
    q.push(" AND n.id <= ").bind_int(last_id).push(" AND n.id IN (SELECT m.id FROM db_dbnode m WHERE m.mtime >= ");
    q.bind_utc(since, false).push(") ORDER BY n.id");
    Ok(db.fetch_all(q).await?)
}

/// [`refresh`] when rows `kept` read changed: the changing columns of every structure read
/// again, and merged with `kept` by id.
async fn rescan(db: &Db, kept: &Index) -> QueryResult<Index> {
    enum Slot {
        Kept(Arc<Entry>),
        New(i64),
    }
    let mut slots = Vec::with_capacity(kept.entries.len());
    let (mut skipped, mut new, mut rows) = (Vec::new(), Vec::new(), Rows::default());
    let mut old = kept.entries.iter().peekable();
    let mut old_skipped = kept.skipped.iter().peekable();
    let mut after = i64::MIN;
    loop {
        let read = chunk(db, Columns::Changing, after).await?;
        let Some(last) = read.last().and_then(|r| r.first()).and_then(|c| c.as_i64()) else { break };
        let full = read.len() as i64 >= CHUNK;
        after = last;
        for (node, _) in rows_with_nodes(read, &NAMES[..NAMES.len() - 1]) {
            rows.add(&node);
            // The kept entries before this node's id are of nodes gone.
            while old.next_if(|e| e.node.pk < node.pk).is_some() {}
            while old_skipped.next_if(|(pk, _)| *pk < node.pk).is_some() {}
            let same = old.next_if(|e| e.node.pk == node.pk);
            // An id now of another node (the database was replaced): derived again.
            if let Some(entry) = same.filter(|e| e.node.uuid == node.uuid) {
                slots.push(Slot::Kept(updated(entry, node)));
            } else if old_skipped.next_if(|(pk, uuid)| *pk == node.pk && *uuid == node.uuid).is_some() {
                skipped.push((node.pk, node.uuid));
            } else {
                new.push(node.pk);
                slots.push(Slot::New(node.pk));
            }
        }
        if !full {
            break;
        }
    }
    let mut derived: HashMap<i64, Entry> = HashMap::with_capacity(new.len());
    for ids in new.chunks(IDS_PER_QUERY) {
        let (entries, mut skip, _) = derive_off_the_worker(chunk_of(db, ids).await?).await?;
        derived.extend(entries.into_iter().map(|e| (e.node.pk, e)));
        skipped.append(&mut skip);
    }
    skipped.sort_unstable();
    let count = derived.len();
    let entries = slots
        .into_iter()
        .filter_map(|slot| match slot {
            Slot::Kept(entry) => Some(entry),
            // Gone between the two reads, or not a structure: not an entry.
            Slot::New(pk) => derived.remove(&pk).map(Arc::new),
        })
        .collect();
    Ok(Index::new(entries, skipped, count, rows))
}

/// `entry` with the changing columns of `node`: itself when none changed.
fn updated(entry: &Arc<Entry>, node: entry::NodeColumns) -> Arc<Entry> {
    let kept = &entry.node;
    if kept.label == node.label && kept.mtime == node.mtime && kept.creator == node.creator {
        return entry.clone();
    }
    let mut changed = Entry::clone(entry);
    changed.node = node;
    Arc::new(changed)
}

/// The StructureData rows with an id up to `last_id` now: how many, and their latest mtime.
async fn rows_up_to(db: &Db, last_id: i64) -> QueryResult<Rows> {
    let mut q = db.query();
    q.push("SELECT count(*), CAST(sum(n.id) AS bigint), ").time_text("max(n.mtime)");
    q.push(" FROM db_dbnode n WHERE n.node_type = ").bind_text(STRUCTURE_TYPE).push(" AND n.id <= ").bind_int(last_id);
    let row = db.fetch_all(q).await?.into_iter().next().unwrap_or_default();
    let mut r = Record::new(&["count", "sum", "latest"], row);
    Ok(Rows {
        count: r.int("count").unwrap_or_default(),
        id_sum: r.int("sum").unwrap_or_default(),
        last_id,
        latest: utc(r.time("latest")),
    })
}

/// How many ids one query of [`rescan`] names.
const IDS_PER_QUERY: usize = 500;

async fn derive_off_the_worker(
    rows: Vec<crate::storage::db::Row>,
) -> QueryResult<(Vec<Entry>, Vec<(i64, String)>, Rows)> {
    tokio::task::spawn_blocking(move || derive_rows(rows))
        .await
        .map_err(|e| QueryError::Internal(format!("building the structure index failed: {e}")))
}

/// The columns of a StructureData row [`chunk`] reads, in order; `attributes` last.
const NAMES: [&str; 7] = ["id", "uuid", "label", "ctime", "mtime", "creator", "attributes"];

/// Which columns [`chunk`] reads: all of them, or all but the attributes (what can change).
#[derive(Clone, Copy, PartialEq)]
enum Columns {
    All,
    Changing,
}

/// The next [`CHUNK`] StructureData nodes with an id above `after`, with their creators.
async fn chunk(db: &Db, columns: Columns, after: i64) -> QueryResult<Vec<crate::storage::db::Row>> {
    let mut q = select(db, columns);
    q.push(" AND n.id > ").bind_int(after).push(" ORDER BY n.id LIMIT ").bind_int(CHUNK);
    Ok(db.fetch_all(q).await?)
}

/// The StructureData nodes of `ids` (at most [`IDS_PER_QUERY`]), whole, with their creators.
async fn chunk_of(db: &Db, ids: &[i64]) -> QueryResult<Vec<crate::storage::db::Row>> {
    let mut q = select(db, Columns::All);
    q.push(" AND n.id IN (");
    for (i, &id) in ids.iter().enumerate() {
        q.push(if i == 0 { "" } else { ", " }).bind_int(id);
    }
    q.push(") ORDER BY n.id");
    Ok(db.fetch_all(q).await?)
}

/// `SELECT` of the [`NAMES`] columns of StructureData nodes and their creators, up to the
/// `WHERE` clause's first condition.
fn select(db: &Db, columns: Columns) -> crate::storage::db::Query {
    let mut q = db.query();
    q.push("SELECT n.id, ").uuid_text("n.uuid").push(", n.label, ").time_text("n.ctime").push(", ");
    q.time_text("n.mtime").push(", ").uuid_text("p.uuid");
    if columns == Columns::All {
        q.push(", ").json_text("n.attributes");
    }
    q.push(" FROM db_dbnode n LEFT JOIN db_dblink l ON l.output_id = n.id AND l.type = ").bind_text("create");
    q.push(" LEFT JOIN db_dbnode p ON p.id = l.input_id WHERE n.node_type = ").bind_text(STRUCTURE_TYPE);
    q
}

fn utc(t: Option<Timestamp>) -> Option<DateTime<Utc>> {
    match t {
        Some(Timestamp::Utc(t)) => Some(t),
        _ => None,
    }
}

/// The node columns of rows read by [`chunk`] (named `names`), a node once: a node with two
/// `create` links appears twice, and its first row is kept. The rest of each row (the
/// attributes, when read) comes with it.
fn rows_with_nodes<'a>(
    rows: Vec<crate::storage::db::Row>,
    names: &'a [&'a str],
) -> impl Iterator<Item = (entry::NodeColumns, Record<'a>)> + use<'a> {
    let mut last = None;
    rows.into_iter().filter_map(move |row| {
        let mut r = Record::new(names, row);
        let pk = r.int("id").unwrap_or_default();
        if last == Some(pk) {
            return None;
        }
        last = Some(pk);
        let node = entry::NodeColumns {
            pk,
            uuid: r.text("uuid").unwrap_or_default(),
            label: r.text("label").unwrap_or_default(),
            ctime: utc(r.time("ctime")),
            mtime: utc(r.time("mtime")),
            creator: r.text("creator"),
        };
        Some((node, r))
    })
}

/// The entries of rows read whole by [`chunk`], the ids and UUIDs of those that could not be
/// read as structures, and the rows read.
fn derive_rows(rows: Vec<crate::storage::db::Row>) -> (Vec<Entry>, Vec<(i64, String)>, Rows) {
    let mut entries = Vec::with_capacity(rows.len());
    let (mut skipped, mut seen) = (Vec::new(), Rows::default());
    for (node, mut r) in rows_with_nodes(rows, &NAMES) {
        seen.add(&node);
        let (pk, uuid) = (node.pk, node.uuid.clone());
        let attributes = r.text("attributes").unwrap_or_default();
        match Entry::derive(node, &attributes) {
            Ok(entry) => entries.push(entry),
            Err(_) => skipped.push((pk, uuid)),
        }
    }
    (entries, skipped, seen)
}
