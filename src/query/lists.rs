//! Lists of nodes, computers, users and groups: the caller's conditions, the ordering, the
//! count and one window of typed rows; and the resolution of identifiers (UUIDs, UUID
//! prefixes, user ids) to primary keys.
//!
//! A list is prepared first ([`EntityList::new`] checks the ordering before anything runs),
//! counted through the result cache, then read with the limit and offset the caller computed
//! from the count: one query for the count and one for the rows, whatever their number.

use crate::query::error::{QueryError, QueryResult};
use crate::query::rows::{Record, Timestamp, push_selects};
use crate::query::tables::{self, Kind, Table, order_direction};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering as AtomicOrdering};

use crate::storage::db::{Cell, Db, Dialect, Param, Query, Row};

/// The tables that are listed as collections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    Nodes,
    Computers,
    Users,
    Groups,
}

impl Collection {
    pub fn entity(self) -> &'static Table {
        match self {
            Collection::Nodes => &tables::NODE,
            Collection::Computers => &tables::COMPUTER,
            Collection::Users => &tables::USER,
            Collection::Groups => &tables::GROUP,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions and ordering

/// A column that conditions and ordering may name besides the entity's own, such as the link
/// columns of link lists.
#[derive(Debug, Clone, Copy)]
pub struct ExtraColumn {
    /// The name clients use.
    pub name: &'static str,
    /// Its SQL expression.
    pub sql: &'static str,
    pub kind: Kind,
}

/// What the caller's conditions apply to: the columns of `entity` (qualified by its alias),
/// and `extra`.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub entity: &'static Table,
    pub extra: &'a [ExtraColumn],
}

/// Row conditions chosen by the caller (a request's filters), which the filter translator
/// turns into SQL. [`Conditions::push`] appends ` AND <condition>` for each of them (or
/// nothing), with every value bound.
pub trait Conditions: Sync {
    fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()>;
}

/// No conditions.
pub struct Unfiltered;

impl Conditions for Unfiltered {
    fn push(&self, _q: &mut Query, _scope: &Scope<'_>) -> QueryResult<()> {
        Ok(())
    }
}

/// A checked `ORDER BY` clause.
#[derive(Debug, Clone)]
pub struct OrderBy {
    sql: String,
    /// The terms, for seeking to a remembered row ([`EntityList::rows`]); `None` when the
    /// ordering names columns other than the entity's own (the link columns).
    terms: Option<Vec<OrderTerm>>,
    /// The clause with its last term, the id ascending, turned descending: the order an
    /// index of descending terms is read in without a sort ([`EntityList::seek`]).
    id_descending: Option<String>,
}

/// A condition on one term that selects rows after a value of it.
#[derive(Debug, Clone, Copy)]
enum Step {
    Greater,
    Less,
    Null,
    NotNull,
}

/// One term of an ordering over an entity column.
#[derive(Debug, Clone)]
struct OrderTerm {
    /// The expression sorted on.
    expr: String,
    desc: bool,
    kind: Kind,
}

impl OrderTerm {
    /// The term's value as a row reads it back: a cell that binds again as the same value.
    fn push_key(&self, q: &mut Query) {
        match (q.dialect, self.kind) {
            (Dialect::Postgres, Kind::Time | Kind::Uuid) => q.push("CAST(").push(&self.expr).push(" AS text)"),
            _ => q.push(&self.expr),
        };
    }

    /// `value` bound as a value of the term's type.
    fn push_value(&self, q: &mut Query, value: &Cell) {
        let cast = match (q.dialect, self.kind) {
            (Dialect::Postgres, Kind::Time) => Some("timestamptz"),
            (Dialect::Postgres, Kind::Uuid) => Some("uuid"),
            _ => None,
        };
        if cast.is_some() {
            q.push("CAST(");
        }
        match value {
            Cell::Int(i) => q.bind_int(*i),
            Cell::Float(f) => q.bind(Param::Float(*f)),
            Cell::Text(t) => q.bind_text(t.as_str()),
            Cell::Null => q.bind(Param::Null),
        };
        if let Some(cast) = cast {
            q.push(" AS ").push(cast).push(")");
        }
    }

    /// `<expr> <op> <value>`.
    fn push_compare(&self, q: &mut Query, op: &str, value: &Cell) {
        q.push(&self.expr).push(" ").push(op).push(" ");
        self.push_value(q, value);
    }

    /// `<expr> = value`, or `<expr> IS NULL` for NULL.
    fn push_equal(&self, q: &mut Query, value: &Cell) {
        if *value == Cell::Null {
            q.push(&self.expr).push(" IS NULL");
        } else {
            self.push_compare(q, "=", value);
        }
    }

    /// The conditions that together select the rows after `value` in this term's order, in
    /// that order: NULL sorts first ascending and last descending, on both databases (see
    /// [`order_direction`]).
    fn steps_after(&self, value: &Cell) -> Vec<Step> {
        match (*value == Cell::Null, self.desc) {
            (true, false) => vec![Step::NotNull],
            (true, true) => Vec::new(),
            (false, false) => vec![Step::Greater],
            (false, true) => vec![Step::Less, Step::Null],
        }
    }

    fn push_step(&self, q: &mut Query, step: Step, value: &Cell) {
        match step {
            Step::Greater => self.push_compare(q, ">", value),
            Step::Less => self.push_compare(q, "<", value),
            Step::Null => {
                q.push(&self.expr).push(" IS NULL");
            }
            Step::NotNull => {
                q.push(&self.expr).push(" IS NOT NULL");
            }
        }
    }
}

impl OrderBy {
    /// The requested `(name, descending)` columns, then `id` ascending so that pages are
    /// stable. `extra` names further orderable columns (the link columns of link lists).
    pub fn new(
        dialect: Dialect,
        entity: &Table,
        extra: &[ExtraColumn],
        orderby: &[(String, bool)],
    ) -> QueryResult<Self> {
        let mut q = Query::new(dialect);
        let mut seen: Vec<&str> = Vec::new();
        let mut terms = Some(Vec::new());
        q.push(" ORDER BY ");
        for (name, desc) in orderby {
            if let Some(column) = extra.iter().find(|c| c.name == name) {
                if !seen.contains(&column.name) {
                    seen.push(column.name);
                    q.push(column.sql).push(order_direction(dialect, *desc, false)).push(", ");
                    terms = None;
                }
                continue;
            }
            let column = entity
                .usable_column(name)
                .map_err(|why| QueryError::bad_request(format!("cannot order by {name}: {why}")))?;
            if column.kind == Kind::Json {
                return Err(QueryError::bad_request(format!("cannot order by the JSON column {}", column.name)));
            }
            if seen.contains(&column.name) {
                continue;
            }
            seen.push(column.name);
            let qualified = entity.qualified(column.name);
            let start = q.sql.len();
            match (column.kind, dialect) {
                // A native uuid sorts as its canonical text does in byte order, and uses the index.
                (Kind::Uuid, Dialect::Sqlite) => q.uuid_text(&qualified),
                _ => q.push(&qualified),
            };
            if let Some(terms) = terms.as_mut() {
                terms.push(OrderTerm { expr: q.sql[start..].to_string(), desc: *desc, kind: column.kind });
            }
            q.push(order_direction(dialect, *desc, column.nullable)).push(", ");
        }
        if !seen.contains(&"id") {
            q.push(&entity.qualified("id")).push(" ASC, ");
            if let Some(terms) = terms.as_mut() {
                terms.push(OrderTerm { expr: entity.qualified("id"), desc: false, kind: Kind::Int });
            }
        }
        q.sql.truncate(q.sql.len() - 2);
        let id = entity.qualified("id");
        let id_descending = match terms.as_deref() {
            Some([.., last]) if last.expr == id && !last.desc && q.sql.ends_with(" ASC") => {
                Some(format!("{} DESC", &q.sql[..q.sql.len() - 4]))
            }
            _ => None,
        };
        Ok(Self { sql: q.sql, terms, id_descending })
    }

    /// The clause, with a leading space.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// A last tie-breaker, `, <sql>`.
    fn then(mut self, sql: &str) -> Self {
        self.sql.push_str(", ");
        self.sql.push_str(sql);
        self.terms = None;
        self.id_descending = None;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Identifiers

/// Resolves a UUID or UUID prefix (any case, dashes optional) to the primary key of `entity`.
pub async fn resolve_uuid(db: &Db, entity: &Table, id: &str) -> QueryResult<i64> {
    let lower = id.to_ascii_lowercase();
    let mut hex: String = lower.chars().filter(|c| *c != '-').collect();
    for pos in [20, 16, 12, 8] {
        if hex.len() > pos {
            hex.insert(pos, '-');
        }
    }
    let mut q = db.query();
    q.push("SELECT id FROM ").push(entity.sql_name).push(" WHERE ");
    let digits: String = hex.chars().filter(|c| *c != '-').collect();
    let is_hex = digits.len() <= 32 && digits.bytes().all(|b| b.is_ascii_hexdigit());
    if q.dialect == Dialect::Postgres && is_hex {
        // The prefix as a range of the native uuid, so that the index serves it.
        let bound = |fill: char| -> String {
            let mut full = digits.clone();
            while full.len() < 32 {
                full.push(fill);
            }
            for pos in [20, 16, 12, 8] {
                full.insert(pos, '-');
            }
            full
        };
        if digits.len() == 32 {
            q.push("uuid = CAST(").bind_text(bound('0')).push(" AS uuid)");
        } else {
            q.push("uuid BETWEEN CAST(").bind_text(bound('0')).push(" AS uuid) AND CAST(");
            q.bind_text(bound('f')).push(" AS uuid)");
        }
    } else if hex.len() == 36 {
        q.uuid_text("uuid").push(" = ").bind_text(hex);
    } else {
        q.uuid_text("uuid").push(" LIKE ").bind_text(format!("{hex}%"));
    }
    q.push(" LIMIT 2");
    let rows = db.fetch_all(q).await?;
    match rows.as_slice() {
        [row] => Ok(row[0].as_i64().unwrap_or_default()),
        [] => Err(QueryError::not_found(format!(
            "either no object's id starts with '{id}' or the corresponding object is not of type aiida.orm.{}",
            entity.orm_name
        ))),
        _ => Err(QueryError::not_found("More than one node found. Provide longer starting pattern for id.")),
    }
}

/// Checks that user `pk` exists.
pub async fn resolve_user(db: &Db, pk: i64) -> QueryResult<i64> {
    let mut q = db.query();
    q.push("SELECT id FROM db_dbuser WHERE id = ").bind_int(pk);
    match db.fetch_optional(q).await? {
        Some(_) => Ok(pk),
        None => Err(QueryError::not_found(format!("no user with id {pk}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Rows

/// A node as lists show it. Text columns are `None` where the storage holds NULL (archives of
/// the oldest versions allow it in most columns).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub id: i64,
    pub uuid: Option<String>,
    pub node_type: Option<String>,
    pub process_type: Option<String>,
    pub label: Option<String>,
    pub ctime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
    pub user_id: Option<i64>,
    /// JSON text of the attributes, when they were asked for and are not NULL.
    pub attributes: Option<String>,
    /// JSON text of the extras, when they were asked for and are not NULL.
    pub extras: Option<String>,
}

impl NodeRow {
    /// The node columns every node row is read from.
    pub(crate) const COLUMNS: [&'static str; 8] =
        ["id", "label", "node_type", "process_type", "ctime", "mtime", "uuid", "user_id"];

    /// Reads the [`NodeRow::COLUMNS`] of `r`, and `attributes`/`extras` when selected.
    pub(crate) fn read(r: &mut Record<'_>) -> Self {
        Self {
            id: r.int("id").unwrap_or_default(),
            uuid: r.text("uuid"),
            node_type: r.text("node_type"),
            process_type: r.text("process_type"),
            label: r.text("label"),
            ctime: r.time("ctime"),
            mtime: r.time("mtime"),
            user_id: r.int("user_id"),
            attributes: r.selected("attributes").and_then(|c| c.into_string()),
            extras: r.selected("extras").and_then(|c| c.into_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ComputerRow {
    pub id: i64,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub hostname: Option<String>,
    pub description: Option<String>,
    pub scheduler_type: Option<String>,
    pub transport_type: Option<String>,
    /// JSON text.
    pub metadata: Option<String>,
}

impl ComputerRow {
    const COLUMNS: [&'static str; 8] =
        ["id", "uuid", "label", "hostname", "description", "scheduler_type", "transport_type", "metadata"];

    fn read(r: &mut Record<'_>) -> Self {
        Self {
            id: r.int("id").unwrap_or_default(),
            uuid: r.text("uuid"),
            label: r.text("label"),
            hostname: r.text("hostname"),
            description: r.text("description"),
            scheduler_type: r.text("scheduler_type"),
            transport_type: r.text("transport_type"),
            metadata: r.text("metadata"),
        }
    }
}

/// A user without the email address, which is never returned.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    pub id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub institution: Option<String>,
}

impl UserRow {
    const COLUMNS: [&'static str; 4] = ["id", "first_name", "last_name", "institution"];

    fn read(r: &mut Record<'_>) -> Self {
        Self {
            id: r.int("id").unwrap_or_default(),
            first_name: r.text("first_name"),
            last_name: r.text("last_name"),
            institution: r.text("institution"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub id: i64,
    pub uuid: Option<String>,
    pub label: Option<String>,
    pub type_string: Option<String>,
    pub time: Option<Timestamp>,
    pub description: Option<String>,
    /// JSON text.
    pub extras: Option<String>,
    pub user_id: Option<i64>,
}

impl GroupRow {
    const COLUMNS: [&'static str; 8] =
        ["id", "uuid", "label", "type_string", "time", "description", "extras", "user_id"];

    fn read(r: &mut Record<'_>) -> Self {
        Self {
            id: r.int("id").unwrap_or_default(),
            uuid: r.text("uuid"),
            label: r.text("label"),
            type_string: r.text("type_string"),
            time: r.time("time"),
            description: r.text("description"),
            extras: r.text("extras"),
            user_id: r.int("user_id"),
        }
    }
}

/// One row of a collection.
#[derive(Debug, Clone, PartialEq)]
pub enum EntityRow {
    Node(NodeRow),
    Computer(ComputerRow),
    User(UserRow),
    Group(GroupRow),
}

// ---------------------------------------------------------------------------------------------
// Lists

/// What to list.
#[derive(Clone, Copy)]
pub struct ListSpec<'a> {
    pub collection: Collection,
    /// Only the row with this primary key.
    pub pk: Option<i64>,
    pub conditions: &'a dyn Conditions,
    /// `(column name, descending)`, as requested.
    pub orderby: &'a [(String, bool)],
    /// Read the nodes' attributes too (nodes only).
    pub attributes: bool,
    /// Read the nodes' extras too (nodes only).
    pub extras: bool,
}

/// A prepared list: count it, then read one window of it.
pub struct EntityList<'a> {
    dialect: Dialect,
    spec: ListSpec<'a>,
    order: OrderBy,
    /// Every how many rows a deep page remembers where it starts ([`EntityList::rows`]).
    boundary_every: i64,
    /// Every how many rows, between those, a finer start is remembered.
    fine_every: i64,
    /// Rows the page reads stepped over before their pages ([`EntityList::rows_skipped`]).
    skipped: AtomicI64,
    /// Whether the rows are read in id order without the conditions' indexes
    /// ([`EntityList::reads_by_id`]).
    by_id: AtomicBool,
}

/// A list ordered by id whose conditions match at least one row in this many of the table,
/// and that SQLite would sort, is read in id order on SQLite ([`EntityList::reads_by_id`]).
const DENSE: i64 = 4;

/// Every how many rows of an ordering the row at the start is remembered (in the result
/// cache), so that a page at any depth skips fewer rows than this.
pub const PAGE_BOUNDARY_EVERY: i64 = 1000;

/// Every how many rows between those the row at the start is remembered too (in the
/// database's boundary cache, [`Db::boundaries`]), each found from an earlier one, so that a
/// page, once near pages were read, skips fewer rows than this.
pub const PAGE_FINE_BOUNDARY_EVERY: i64 = 100;

/// Larger pages are read with the ids-first query ([`EntityList::rows_query`]) alone.
const MAX_SEEK_ROWS: i64 = 1000;

impl<'a> EntityList<'a> {
    /// Checks the ordering; nothing runs yet. `dialect` is that of the database the list is
    /// then read from.
    pub fn new(dialect: Dialect, spec: ListSpec<'a>) -> QueryResult<Self> {
        let order = OrderBy::new(dialect, spec.collection.entity(), &[], spec.orderby)?;
        Ok(Self {
            dialect,
            spec,
            order,
            boundary_every: PAGE_BOUNDARY_EVERY,
            fine_every: PAGE_FINE_BOUNDARY_EVERY,
            skipped: AtomicI64::new(0),
            by_id: AtomicBool::new(false),
        })
    }

    /// Remembers the row at the start of every `every` rows instead of every
    /// [`PAGE_BOUNDARY_EVERY`] (0: none), and between those of every `fine` rows instead of
    /// every [`PAGE_FINE_BOUNDARY_EVERY`] (0, or not below `every`: none), for tests over
    /// small tables.
    pub fn with_boundaries(mut self, every: i64, fine: i64) -> Self {
        self.boundary_every = every;
        self.fine_every = fine;
        self
    }

    /// Whether the last [`EntityList::rows`] read in id order, without the conditions'
    /// indexes ([`EntityList::reads_by_id`]).
    pub fn read_in_id_order(&self) -> bool {
        self.by_id.load(AtomicOrdering::Relaxed)
    }

    /// How many rows the reads of [`EntityList::rows`] so far stepped over on the database to
    /// reach their pages (from the start of the list or from a remembered row; finding a
    /// coarse boundary, which the result cache then keeps, is not counted).
    pub fn rows_skipped(&self) -> i64 {
        self.skipped.load(AtomicOrdering::Relaxed)
    }

    /// ` FROM <table> <alias> WHERE ...`: the same in the count and in the row queries (which
    /// read by id when [`EntityList::reads_by_id`] says so).
    fn push_from_where(&self, q: &mut Query) -> QueryResult<()> {
        self.push_from_where_of(q, self.by_id.load(AtomicOrdering::Relaxed))
    }

    fn push_from_where_of(&self, q: &mut Query, by_id: bool) -> QueryResult<()> {
        let entity = self.spec.collection.entity();
        q.push(" FROM ").push(entity.sql_name).push(" ").push(entity.alias);
        if by_id {
            q.push(" NOT INDEXED");
        }
        q.push(" WHERE 1 = 1");
        if let Some(pk) = self.spec.pk {
            q.push(" AND ").push(&entity.qualified("id")).push(" = ").bind_int(pk);
        }
        self.spec.conditions.push(q, &Scope { entity, extra: &[] })
    }

    fn count_query(&self) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT count(*)");
        // A count is best served by the conditions' indexes (it reads them alone).
        self.push_from_where_of(&mut q, false)?;
        Ok(q)
    }

    /// Whether this list's rows are read in id order, without the conditions' indexes: on
    /// SQLite, for a list ordered by id alone that SQLite would read from a condition's index
    /// and sort, when at least one row in [`DENSE`] of the table matches.
    ///
    /// SQLite has no statistics for an AiiDA database (its `sqlite_stat1` is never made), so
    /// it takes any indexed condition for a selective one. `node_type LIKE 'data.%'` then
    /// reads three quarters of a 10^6-node table from the node type's index, several keys,
    /// and sorts them by id for a page of 10 (0.35 s), where reading the table in id order
    /// finds them in the first few dozen rows (0.3 ms). An index that gives the rows in id
    /// order already (one key: `node_type = ?`) is kept: its plan has no sort, and the
    /// matches may all sit at the end of the table (a batch imported last). With a sort, the
    /// index reads every match; in id order at most [`DENSE`] rows are read per match, even
    /// when the matches come in one block.
    ///
    /// What decides is the list's count, when the result cache holds it (the pages of the APIs
    /// count first; nothing is counted for this alone); SQLite's plan for the list's first row,
    /// kept in the result cache with the count; and the table's largest id, which SQLite reads
    /// at the end of the table's tree (the ids of deleted rows count too, which only makes the
    /// test stricter). A list whose plan has no sort (no condition, or one key) is decided on
    /// without the largest id. Only a way to read the same rows: when a step of the decision
    /// fails, the list is read as SQLite plans it.
    async fn reads_by_id(&self, db: &Db) -> QueryResult<bool> {
        let entity = self.spec.collection.entity();
        let by_id =
            matches!(&self.order.terms, Some(terms) if terms.len() == 1 && terms[0].expr == entity.qualified("id"));
        if self.dialect != Dialect::Sqlite || !by_id || self.spec.pk.is_some() {
            return Ok(false);
        }
        let count = self.count_query()?;
        // No condition: no index to keep away from (and nothing to look up on every page).
        if count.sql.ends_with(" WHERE 1 = 1") {
            return Ok(false);
        }
        let Some(matching) = db.count_if_cached(&count).await else {
            return Ok(false);
        };
        // The plan of one row: the same as a page's, and one plan kept per list.
        let mut plan = self.plain_rows_query_of(&self.names(), 1, 0, false)?;
        plan.sql.insert_str(0, "EXPLAIN QUERY PLAN ");
        let Ok(steps) = db.fetch_all_cached(plan).await else { return Ok(false) };
        let sorts = steps
            .iter()
            .flatten()
            .any(|cell| matches!(cell, Cell::Text(step) if step.contains("TEMP B-TREE FOR ORDER BY")));
        if !sorts {
            return Ok(false);
        }
        let mut last = Query::new(self.dialect);
        last.push("SELECT max(").push(&entity.qualified("id")).push(") FROM ").push(entity.sql_name);
        last.push(" ").push(entity.alias);
        Ok(db.fetch_count(last).await.is_ok_and(|last| matching.saturating_mul(DENSE) >= last))
    }

    /// The number of matching rows (through the result cache).
    pub async fn count(&self, db: &Db) -> QueryResult<i64> {
        Ok(db.fetch_count_cached(self.count_query()?).await?)
    }

    /// The selected columns, in order.
    fn names(&self) -> Vec<&'static str> {
        let mut names = match self.spec.collection {
            Collection::Nodes => NodeRow::COLUMNS.to_vec(),
            Collection::Computers => ComputerRow::COLUMNS.to_vec(),
            Collection::Users => UserRow::COLUMNS.to_vec(),
            Collection::Groups => GroupRow::COLUMNS.to_vec(),
        };
        if self.spec.collection == Collection::Nodes {
            if self.spec.attributes {
                names.push("attributes");
            }
            if self.spec.extras {
                names.push("extras");
            }
        }
        names
    }

    /// The rows `offset..offset + limit`. A first page reads them directly. A deeper page
    /// finds its ids first, skipping `offset` entries of the ordering's index alone (a covering
    /// index scan: the index holds the ordered column and the id), then reads only the rows of
    /// the page by primary key; skipping whole rows instead costs a table read (and a sort of
    /// wide rows) for every skipped row. The ordering ends with the id, so it is total and
    /// both forms return the same rows in the same order.
    fn rows_query(&self, names: &[&str], limit: i64, offset: i64) -> QueryResult<Query> {
        let entity = self.spec.collection.entity();
        let mut q = Query::new(self.dialect);
        q.push("SELECT ");
        push_selects(&mut q, entity, names);
        if offset == 0 {
            return self.plain_rows_query(names, limit, offset);
        }
        let id = entity.qualified("id");
        q.push(" FROM ").push(entity.sql_name).push(" ").push(entity.alias);
        q.push(" WHERE ").push(&id).push(" IN (SELECT ").push(&id);
        self.push_from_where(&mut q)?;
        q.push(self.order.sql());
        q.push(" LIMIT ").bind_int(limit).push(" OFFSET ").bind_int(offset);
        q.push(")").push(self.order.sql());
        Ok(q)
    }

    /// The plain form of [`EntityList::rows_query`]: `LIMIT ... OFFSET ...` over whole rows.
    fn plain_rows_query(&self, names: &[&str], limit: i64, offset: i64) -> QueryResult<Query> {
        self.plain_rows_query_of(names, limit, offset, self.by_id.load(AtomicOrdering::Relaxed))
    }

    fn plain_rows_query_of(&self, names: &[&str], limit: i64, offset: i64, by_id: bool) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT ");
        push_selects(&mut q, self.spec.collection.entity(), names);
        self.push_from_where_of(&mut q, by_id)?;
        q.push(self.order.sql());
        q.push(" LIMIT ").bind_int(limit).push(" OFFSET ").bind_int(offset);
        Ok(q)
    }

    /// The matching rows `offset..offset + limit`, in order.
    ///
    /// A deep page starts from a remembered row. Every [`PAGE_BOUNDARY_EVERY`] rows, the row
    /// at that position is found once (with the ids-first query of
    /// [`EntityList::rows_query`]) and kept in the result cache while the database is
    /// unchanged; between those, every [`PAGE_FINE_BOUNDARY_EVERY`] rows, the row is read
    /// along with a page that passes it, while seeking from an earlier remembered row, and
    /// kept in the database's boundary cache. The page then seeks to the nearest remembered
    /// row before it on the ordering's index (`WHERE (ctime, id) come after the remembered
    /// ones`) and skips fewer than [`PAGE_FINE_BOUNDARY_EVERY`] rows once near pages were
    /// read, fewer than [`PAGE_BOUNDARY_EVERY`] on the first visit. Pages near one another,
    /// and every later visit, cost what a first page costs.
    pub async fn rows(&self, db: &Db, limit: i64, offset: i64) -> QueryResult<Vec<EntityRow>> {
        self.by_id.store(self.reads_by_id(db).await?, AtomicOrdering::Relaxed);
        let names = self.names();
        let every = self.boundary_every;
        // Pages before the first remembered row read the start of the list.
        let first = if self.fine_every > 0 && self.fine_every < every { self.fine_every } else { every };
        if let Some(terms) = &self.order.terms
            && every > 0
            && offset >= first
            && (1..=MAX_SEEK_ROWS).contains(&limit)
            && let Some(ids) = self.page_ids(db, terms, limit, offset).await?
        {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let entity = self.spec.collection.entity();
            let mut q = Query::new(self.dialect);
            q.push("SELECT ");
            push_selects(&mut q, entity, &names);
            q.push(" FROM ").push(entity.sql_name).push(" ").push(entity.alias);
            q.push(" WHERE ").push(&entity.qualified("id")).push(" IN (");
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                q.bind_int(*id);
            }
            q.push(")");
            // The rows in the order of their ids, which is the list's: no sort on the database.
            let position: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
            let mut rows = db.fetch_all(q).await?;
            rows.sort_by_key(|row| row.first().and_then(Cell::as_i64).and_then(|id| position.get(&id).copied()));
            return Ok(self.typed(&names, rows));
        }
        self.skipped.fetch_add(offset, AtomicOrdering::Relaxed);
        let query = self.rows_query(&names, limit, offset)?;
        self.read_rows(db, &names, query).await
    }

    /// The ids of the rows `offset..offset + limit`, read from the nearest remembered row
    /// before them (the first row of the list counts as a coarse boundary); the fine
    /// boundaries passed on the way are remembered. `None` when the list has no row at the
    /// coarse boundary.
    async fn page_ids(&self, db: &Db, terms: &[OrderTerm], limit: i64, offset: i64) -> QueryResult<Option<Vec<i64>>> {
        let every = self.boundary_every;
        let coarse = offset / every * every;
        let fine = self.fine_every;
        // Fine boundaries are kept under the fingerprint the database has now, or not at all.
        let fingerprint = if fine > 0 && fine < every { db.fingerprint().await } else { None };
        // The last fine boundary at or before `offset`, and the nearest one kept.
        let mut last_fine = coarse;
        let mut from = None;
        if let Some(fingerprint) = &fingerprint {
            last_fine = coarse + (offset - coarse) / fine * fine;
            let mut at = last_fine;
            while at > coarse {
                if let Some(values) = db.boundaries().get(&self.boundary_query(terms, at)?, fingerprint) {
                    from = Some((at, values));
                    break;
                }
                at -= fine;
            }
        }
        let (start, boundary) = match from {
            Some(found) => found,
            None => match self.boundary(db, terms, coarse).await? {
                Some(values) => (coarse, values),
                None => return Ok(None),
            },
        };
        let record = fingerprint.as_ref().filter(|_| last_fine > start);
        let skip = offset - start;
        let rows = self.seek(db, terms, &boundary, skip + limit, record.is_some()).await?;
        self.skipped.fetch_add(skip.min(rows.len() as i64), AtomicOrdering::Relaxed);
        if let Some(fingerprint) = record {
            let mut at = start + fine;
            while at <= last_fine {
                let Some(row) = rows.get((at - start) as usize) else { break };
                db.boundaries().put(&self.boundary_query(terms, at)?, fingerprint, row[1..].to_vec());
                at += fine;
            }
        }
        let ids = rows.get(skip as usize..).unwrap_or_default();
        Ok(Some(ids.iter().filter_map(|row| row.first().and_then(Cell::as_i64)).collect()))
    }

    /// The query of the ordering's values of the row at `start`; also the key under which
    /// they are kept.
    fn boundary_query(&self, terms: &[OrderTerm], start: i64) -> QueryResult<Query> {
        let entity = self.spec.collection.entity();
        let id = entity.qualified("id");
        let mut q = Query::new(self.dialect);
        q.push("SELECT ");
        for (i, term) in terms.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            term.push_key(&mut q);
        }
        q.push(" FROM ").push(entity.sql_name).push(" ").push(entity.alias);
        q.push(" WHERE ").push(&id).push(" IN (SELECT ").push(&id);
        self.push_from_where(&mut q)?;
        q.push(self.order.sql()).push(" LIMIT 1 OFFSET ").bind_int(start).push(")");
        Ok(q)
    }

    /// The ordering's values of the row at `start` (through the result cache); `None` when
    /// there is no such row.
    async fn boundary(&self, db: &Db, terms: &[OrderTerm], start: i64) -> QueryResult<Option<Vec<Cell>>> {
        let q = self.boundary_query(terms, start)?;
        let row = db.fetch_all_cached(q).await?.into_iter().next();
        Ok(row.filter(|cells| cells.len() == terms.len()))
    }

    /// The first `need` rows from `boundary` on, in order: each the row's id, then the
    /// ordering's values as [`EntityList::boundary`] reads them (`keys`: the caller needs
    /// them; they may be there all the same). Those rows are the concatenation of parts
    /// that each one simple query finds on the index of the first term: the boundary row
    /// itself, then the rows equal to it in the first `i` terms and after it in term `i`, for
    /// `i` from the last term down to the first. Each part is in the list's order and comes
    /// wholly after the previous one, so the parts are read in turn until `need` rows are
    /// found. A part is a range (`ctime < ?`) or an equality with a range of ids (`label = ?
    /// AND id > ?`) that the index serves directly, where one condition with `OR`s would have
    /// the database walk a large tie (half of a big database's nodes may share an empty
    /// label) from its start. A part whose remaining terms are descending is read as
    /// [`EntityList::seek_descending`] does.
    async fn seek(
        &self,
        db: &Db,
        terms: &[OrderTerm],
        boundary: &[Cell],
        need: i64,
        keys: bool,
    ) -> QueryResult<Vec<Row>> {
        let id = self.spec.collection.entity().qualified("id");
        let mut rows = Vec::new();
        let mut parts: Vec<(usize, Option<Step>)> = Vec::new();
        // The boundary row itself: its values name it (the id is one of them), and it was
        // found under the same conditions and fingerprint.
        match terms.iter().position(|t| t.expr == id) {
            Some(at) if need > 0 => rows.push([&boundary[at..=at], boundary].concat()),
            Some(_) => {}
            None => parts.push((terms.len(), None)),
        }
        for (i, (term, value)) in terms.iter().zip(boundary).enumerate().rev() {
            parts.extend(term.steps_after(value).into_iter().map(|step| (i, Some(step))));
        }
        let last = terms.len() - 1;
        for (equal, step) in parts {
            let missing = need - rows.len() as i64;
            if missing <= 0 {
                break;
            }
            if let (Some(step), Some(order)) = (step, &self.order.id_descending)
                && equal < last
                && terms[equal..last].iter().all(|t| t.desc)
            {
                self.seek_descending(db, terms, boundary, (equal, step), order, missing, &mut rows).await?;
                continue;
            }
            let mut q = self.seek_select(terms, keys)?;
            for (term, value) in terms[..equal].iter().zip(boundary) {
                q.push(" AND ");
                term.push_equal(&mut q, value);
            }
            if let Some(step) = step {
                q.push(" AND ");
                terms[equal].push_step(&mut q, step, &boundary[equal]);
            }
            q.push(self.order.sql()).push(" LIMIT ").bind_int(missing);
            rows.extend(db.fetch_all(q).await?);
        }
        Ok(rows)
    }

    /// `SELECT <id>[, <values of the terms>] FROM ... WHERE <conditions>`.
    fn seek_select(&self, terms: &[OrderTerm], keys: bool) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT ").push(&self.spec.collection.entity().qualified("id"));
        if keys {
            for term in terms {
                q.push(", ");
                term.push_key(&mut q);
            }
        }
        self.push_from_where(&mut q)?;
        Ok(q)
    }

    /// Appends to `rows` the first `missing` rows of the part `(equal, step)` of
    /// [`EntityList::seek`] whose terms after the first `equal` are descending but for the
    /// last, the id ascending. An index over them holds equal values by ascending id, so
    /// read backwards it gives the ids of a tie descending, and the list's order needs a
    /// sort. The part is read in the index's order instead (`order`: the id descending too),
    /// one row more than needed, and each tie (rows equal in every term but the id) is
    /// turned around. Only the last tie read can be cut short: when the row after the
    /// needed ones belongs to it, it is read again from its start, on the index by
    /// ascending id (`label = ? ORDER BY id`).
    #[allow(clippy::too_many_arguments)]
    async fn seek_descending(
        &self,
        db: &Db,
        terms: &[OrderTerm],
        boundary: &[Cell],
        (equal, step): (usize, Step),
        order: &str,
        missing: i64,
        rows: &mut Vec<Row>,
    ) -> QueryResult<()> {
        let last = terms.len() - 1;
        let mut q = self.seek_select(terms, true)?;
        for (term, value) in terms[..equal].iter().zip(boundary) {
            q.push(" AND ");
            term.push_equal(&mut q, value);
        }
        q.push(" AND ");
        terms[equal].push_step(&mut q, step, &boundary[equal]);
        q.push(order).push(" LIMIT ").bind_int(missing + 1);
        let mut got = db.fetch_all(q).await?;
        // A row's values but the id's: `[id, values...]`, the id last of the terms.
        let tie = |row: &Row| row[1..=last].to_vec();
        let mut cut = None;
        let needed = missing as usize;
        if got.len() > needed {
            let after = tie(&got[needed]);
            if tie(&got[needed - 1]) == after {
                let start = got.iter().position(|row| tie(row) == after).unwrap_or(0);
                cut = Some(got[start].clone());
                got.truncate(start);
            } else {
                got.truncate(needed);
            }
        }
        let mut start = 0;
        while start < got.len() {
            let key = tie(&got[start]);
            let end = got[start..].iter().position(|row| tie(row) != key).map_or(got.len(), |n| start + n);
            got[start..end].reverse();
            start = end;
        }
        let read = got.len() as i64;
        rows.extend(got);
        if let Some(row) = cut {
            let mut q = self.seek_select(terms, true)?;
            for (term, value) in terms[..last].iter().zip(&row[1..]) {
                q.push(" AND ");
                term.push_equal(&mut q, value);
            }
            q.push(self.order.sql()).push(" LIMIT ").bind_int(missing - read);
            rows.extend(db.fetch_all(q).await?);
        }
        Ok(())
    }

    /// [`EntityList::rows`] read with a plain `LIMIT ... OFFSET ...` over whole rows, which
    /// is slow on deep pages: the reference that tests compare [`EntityList::rows`] with.
    pub async fn rows_by_offset(&self, db: &Db, limit: i64, offset: i64) -> QueryResult<Vec<EntityRow>> {
        let names = self.names();
        let query = self.plain_rows_query(&names, limit, offset)?;
        self.read_rows(db, &names, query).await
    }

    async fn read_rows(&self, db: &Db, names: &[&'static str], query: Query) -> QueryResult<Vec<EntityRow>> {
        let rows = db.fetch_all(query).await?;
        Ok(self.typed(names, rows))
    }

    /// Rows of the `names` columns as typed rows.
    fn typed(&self, names: &[&'static str], rows: Vec<Row>) -> Vec<EntityRow> {
        let collection = self.spec.collection;
        rows.into_iter()
            .map(|cells| {
                let mut r = Record::new(names, cells);
                match collection {
                    Collection::Nodes => EntityRow::Node(NodeRow::read(&mut r)),
                    Collection::Computers => EntityRow::Computer(ComputerRow::read(&mut r)),
                    Collection::Users => EntityRow::User(UserRow::read(&mut r)),
                    Collection::Groups => EntityRow::Group(GroupRow::read(&mut r)),
                }
            })
            .collect()
    }
}

/// The link columns of link lists, which filters and ordering may name.
pub const LINK_COLUMNS: [ExtraColumn; 2] = [
    ExtraColumn { name: "link_label", sql: "l.label", kind: Kind::Text },
    ExtraColumn { name: "link_type", sql: "l.type", kind: Kind::Text },
];

/// The ordering of link lists: node and link columns, then the link id.
pub(crate) fn link_order(dialect: Dialect, orderby: &[(String, bool)]) -> QueryResult<OrderBy> {
    Ok(OrderBy::new(dialect, &tables::NODE, &LINK_COLUMNS, orderby)?.then("l.id ASC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(entity: &Table, extra: &[ExtraColumn], orderby: &[(&str, bool)]) -> QueryResult<String> {
        let orderby: Vec<(String, bool)> = orderby.iter().map(|(n, d)| (n.to_string(), *d)).collect();
        OrderBy::new(Dialect::Sqlite, entity, extra, &orderby).map(|o| o.sql)
    }

    #[test]
    fn order_appends_id() {
        assert_eq!(
            order(&tables::NODE, &[], &[("label", true), ("pk", false)]).unwrap(),
            " ORDER BY n.label DESC, n.id ASC"
        );
        assert_eq!(order(&tables::NODE, &[], &[]).unwrap(), " ORDER BY n.id ASC");
        assert!(order(&tables::NODE, &[], &[("nope", false)]).is_err());
        assert_eq!(
            order(&tables::NODE, &LINK_COLUMNS, &[("link_label", true)]).unwrap(),
            " ORDER BY l.label DESC, n.id ASC"
        );
        let links = link_order(Dialect::Postgres, &[("process_type".into(), true)]).unwrap();
        assert_eq!(links.sql(), " ORDER BY n.process_type DESC NULLS LAST, n.id ASC, l.id ASC");
    }

    #[test]
    fn descending_clause_turns_the_last_id_around() {
        let desc = |orderby: &[(&str, bool)], dialect| {
            let orderby: Vec<(String, bool)> = orderby.iter().map(|(n, d)| (n.to_string(), *d)).collect();
            OrderBy::new(dialect, &tables::NODE, &[], &orderby).unwrap().id_descending
        };
        assert_eq!(desc(&[("ctime", true)], Dialect::Sqlite).as_deref(), Some(" ORDER BY n.ctime DESC, n.id DESC"));
        assert_eq!(
            desc(&[("process_type", true), ("id", false)], Dialect::Postgres).as_deref(),
            Some(" ORDER BY n.process_type DESC NULLS LAST, n.id DESC")
        );
        // The id not last, or descending already: nothing to turn around.
        assert_eq!(desc(&[("id", false), ("ctime", true)], Dialect::Sqlite), None);
        assert_eq!(desc(&[("id", true)], Dialect::Sqlite), None);
        assert_eq!(link_order(Dialect::Sqlite, &[]).unwrap().id_descending, None);
    }

    /// Conditions as a filter translator appends them.
    struct LabelIs(&'static str);

    impl Conditions for LabelIs {
        fn push(&self, q: &mut Query, scope: &Scope<'_>) -> QueryResult<()> {
            q.push(" AND ").push(&scope.entity.qualified("label")).push(" = ").bind_text(self.0);
            Ok(())
        }
    }

    #[test]
    fn count_and_rows_share_their_conditions() {
        let orderby = [("ctime".to_string(), true)];
        let spec = ListSpec {
            collection: Collection::Nodes,
            pk: Some(7),
            conditions: &LabelIs("x"),
            orderby: &orderby,
            attributes: true,
            extras: false,
        };
        let list = EntityList::new(Dialect::Postgres, spec).unwrap();
        let count = list.count_query().unwrap();
        assert_eq!(count.sql, "SELECT count(*) FROM db_dbnode n WHERE 1 = 1 AND n.id = $1::int8 AND n.label = $2");
        let names = list.names();
        assert_eq!(names.last(), Some(&"attributes"));
        let rows = list.plain_rows_query(&names, 20, 40).unwrap();
        assert_eq!(
            rows.sql,
            "SELECT n.id, n.label, n.node_type, n.process_type, \
             to_char(n.ctime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
             to_char(n.mtime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), n.uuid::text, n.user_id, \
             n.attributes::text FROM db_dbnode n WHERE 1 = 1 AND n.id = $1::int8 AND n.label = $2 \
             ORDER BY n.ctime DESC, n.id ASC LIMIT $3::int8 OFFSET $4::int8"
        );
        // Deeper pages find their ids on the index first.
        let rows = list.rows_query(&names, 20, 40).unwrap();
        assert!(
            rows.sql.ends_with(
                " FROM db_dbnode n WHERE n.id IN (SELECT n.id FROM db_dbnode n WHERE 1 = 1 AND n.id = $1::int8 \
                 AND n.label = $2 ORDER BY n.ctime DESC, n.id ASC LIMIT $3::int8 OFFSET $4::int8) \
                 ORDER BY n.ctime DESC, n.id ASC"
            ),
            "{}",
            rows.sql
        );
    }

    #[test]
    fn rows_are_read_by_column_name() {
        use crate::storage::db::Cell;
        let spec = ListSpec {
            collection: Collection::Users,
            pk: None,
            conditions: &Unfiltered,
            orderby: &[],
            attributes: true,
            extras: true,
        };
        let list = EntityList::new(Dialect::Sqlite, spec).unwrap();
        // Attributes and extras belong to nodes only.
        let names = list.names();
        assert_eq!(names, ["id", "first_name", "last_name", "institution"]);
        let cells = vec![Cell::Int(3), Cell::Text("Ada".into()), Cell::Null, Cell::Text("EPFL".into())];
        let row = UserRow::read(&mut Record::new(&names, cells));
        assert_eq!(
            row,
            UserRow { id: 3, first_name: Some("Ada".into()), last_name: None, institution: Some("EPFL".into()) }
        );
    }
}
