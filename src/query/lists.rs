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
use crate::storage::db::{Db, Dialect, Query};

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
        q.push(" ORDER BY ");
        for (name, desc) in orderby {
            if let Some(column) = extra.iter().find(|c| c.name == name) {
                if !seen.contains(&column.name) {
                    seen.push(column.name);
                    q.push(column.sql).push(order_direction(dialect, *desc, false)).push(", ");
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
            match (column.kind, dialect) {
                // A native uuid sorts as its canonical text does in byte order, and uses the index.
                (Kind::Uuid, Dialect::Sqlite) => q.uuid_text(&qualified),
                _ => q.push(&qualified),
            };
            q.push(order_direction(dialect, *desc, column.nullable)).push(", ");
        }
        if !seen.contains(&"id") {
            q.push(&entity.qualified("id")).push(" ASC, ");
        }
        q.sql.truncate(q.sql.len() - 2);
        Ok(Self { sql: q.sql })
    }

    /// The clause, with a leading space.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// A last tie-breaker, `, <sql>`.
    fn then(mut self, sql: &str) -> Self {
        self.sql.push_str(", ");
        self.sql.push_str(sql);
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
}

impl<'a> EntityList<'a> {
    /// Checks the ordering; nothing runs yet. `dialect` is that of the database the list is
    /// then read from.
    pub fn new(dialect: Dialect, spec: ListSpec<'a>) -> QueryResult<Self> {
        let order = OrderBy::new(dialect, spec.collection.entity(), &[], spec.orderby)?;
        Ok(Self { dialect, spec, order })
    }

    /// ` FROM <table> <alias> WHERE ...`: the same in the count and in the row query.
    fn push_from_where(&self, q: &mut Query) -> QueryResult<()> {
        let entity = self.spec.collection.entity();
        q.push(" FROM ").push(entity.sql_name).push(" ").push(entity.alias);
        q.push(" WHERE 1 = 1");
        if let Some(pk) = self.spec.pk {
            q.push(" AND ").push(&entity.qualified("id")).push(" = ").bind_int(pk);
        }
        self.spec.conditions.push(q, &Scope { entity, extra: &[] })
    }

    fn count_query(&self) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT count(*)");
        self.push_from_where(&mut q)?;
        Ok(q)
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

    fn rows_query(&self, names: &[&str], limit: i64, offset: i64) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT ");
        push_selects(&mut q, self.spec.collection.entity(), names);
        self.push_from_where(&mut q)?;
        q.push(self.order.sql());
        q.push(" LIMIT ").bind_int(limit).push(" OFFSET ").bind_int(offset);
        Ok(q)
    }

    /// The matching rows `offset..offset + limit`, in order.
    pub async fn rows(&self, db: &Db, limit: i64, offset: i64) -> QueryResult<Vec<EntityRow>> {
        let names = self.names();
        let rows = db.fetch_all(self.rows_query(&names, limit, offset)?).await?;
        let collection = self.spec.collection;
        Ok(rows
            .into_iter()
            .map(|cells| {
                let mut r = Record::new(&names, cells);
                match collection {
                    Collection::Nodes => EntityRow::Node(NodeRow::read(&mut r)),
                    Collection::Computers => EntityRow::Computer(ComputerRow::read(&mut r)),
                    Collection::Users => EntityRow::User(UserRow::read(&mut r)),
                    Collection::Groups => EntityRow::Group(GroupRow::read(&mut r)),
                }
            })
            .collect())
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
        let rows = list.rows_query(&names, 20, 40).unwrap();
        assert_eq!(
            rows.sql,
            "SELECT n.id, n.label, n.node_type, n.process_type, \
             to_char(n.ctime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), \
             to_char(n.mtime AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), n.uuid::text, n.user_id, \
             n.attributes::text FROM db_dbnode n WHERE 1 = 1 AND n.id = $1::int8 AND n.label = $2 \
             ORDER BY n.ctime DESC, n.id ASC LIMIT $3::int8 OFFSET $4::int8"
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
