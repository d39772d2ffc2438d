//! One node: its row with the computer's label, its attributes or extras, its comments, its
//! links (paged lists with conditions, and the tree of direct neighbours), the log records of
//! a process and the repository of a calculation's `retrieved` folder.
//!
//! Every function runs a fixed number of queries, whatever the number of rows.

use crate::query::error::{QueryError, QueryResult};
use crate::query::lists::{Conditions, LINK_COLUMNS, NodeRow, OrderBy, Scope, link_order};
use crate::query::rows::{Record, Timestamp, push_selects};
use crate::query::tables::NODE;
use crate::storage::db::{Db, Dialect, Query};

fn no_node(pk: i64) -> QueryError {
    QueryError::not_found(format!("no node with id {pk}"))
}

/// Which end of a link the node is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Links into the node: the neighbours are its inputs.
    Incoming,
    /// Links out of the node: the neighbours are its outputs.
    Outgoing,
}

impl Direction {
    /// `(the node's end, the neighbour's end)` of `db_dblink`.
    fn ends(self) -> (&'static str, &'static str) {
        match self {
            Direction::Incoming => ("output_id", "input_id"),
            Direction::Outgoing => ("input_id", "output_id"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The node itself

/// A node with what the downloads and repository views need.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDetail {
    pub id: i64,
    pub uuid: String,
    pub node_type: String,
    pub process_type: Option<String>,
    pub label: String,
    pub description: String,
    /// JSON text of the attributes (`None` when NULL).
    pub attributes: Option<String>,
    /// JSON text of the repository metadata (`{}` when NULL).
    pub repository_metadata: String,
    /// The label of the node's computer, if it has one.
    pub computer_label: Option<String>,
}

/// Loads node `pk` with its computer's label.
pub async fn node_detail(db: &Db, pk: i64) -> QueryResult<NodeDetail> {
    const NAMES: [&str; 9] = [
        "id",
        "uuid",
        "node_type",
        "process_type",
        "label",
        "description",
        "attributes",
        "repository_metadata",
        "computer_label",
    ];
    let mut q = db.query();
    q.push("SELECT ");
    push_selects(&mut q, &NODE, &NAMES[..8]);
    q.push(", c.label FROM db_dbnode n LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE n.id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| no_node(pk))?;
    let mut r = Record::new(&NAMES, row);
    Ok(NodeDetail {
        id: r.int("id").unwrap_or(pk),
        uuid: r.text("uuid").unwrap_or_default(),
        node_type: r.text("node_type").unwrap_or_default(),
        process_type: r.text("process_type"),
        label: r.text("label").unwrap_or_default(),
        description: r.text("description").unwrap_or_default(),
        attributes: r.text("attributes"),
        repository_metadata: r.text("repository_metadata").unwrap_or_else(|| "{}".into()),
        computer_label: r.text("computer_label"),
    })
}

/// A JSON column of the node that clients read as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeDict {
    Attributes,
    Extras,
}

/// The JSON text of the attributes or extras of node `pk` (`None` when NULL).
pub async fn node_dict(db: &Db, pk: i64, dict: NodeDict) -> QueryResult<Option<String>> {
    let column = match dict {
        NodeDict::Attributes => "attributes",
        NodeDict::Extras => "extras",
    };
    let mut q = db.query();
    q.push("SELECT ").json_text(column).push(" FROM db_dbnode WHERE id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| no_node(pk))?;
    Ok(row.into_iter().next().and_then(|cell| cell.into_string()))
}

/// A comment on a node, with its author's name.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRow {
    pub ctime: Option<Timestamp>,
    pub content: Option<String>,
    pub mtime: Option<Timestamp>,
    pub user_first_name: String,
    pub user_last_name: String,
}

/// The first `max_rows` comments on node `pk`, oldest first.
pub async fn comments(db: &Db, pk: i64, max_rows: i64) -> QueryResult<Vec<CommentRow>> {
    const NAMES: [&str; 5] = ["ctime", "content", "mtime", "first_name", "last_name"];
    let mut q = db.query();
    q.push("SELECT ").time_text("c.ctime").push(", c.content, ").time_text("c.mtime");
    q.push(", u.first_name, u.last_name FROM db_dbcomment c JOIN db_dbuser u ON u.id = c.user_id WHERE c.dbnode_id = ");
    q.bind_int(pk).push(" ORDER BY c.id ASC LIMIT ").bind_int(max_rows);
    let rows = db.fetch_all(q).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut r = Record::new(&NAMES, row);
            CommentRow {
                ctime: r.time("ctime"),
                content: r.text("content"),
                mtime: r.time("mtime"),
                user_first_name: r.text("first_name").unwrap_or_default(),
                user_last_name: r.text("last_name").unwrap_or_default(),
            }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Link lists

/// A linked node with the link's label and type.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRow {
    pub link_label: Option<String>,
    pub link_type: Option<String>,
    pub node: NodeRow,
}

/// The links of one node in one direction, with the caller's conditions on the linked node
/// and on the link columns ([`LINK_COLUMNS`]): count it, then read one window of it.
pub struct LinkList<'a> {
    dialect: Dialect,
    pk: i64,
    direction: Direction,
    conditions: &'a dyn Conditions,
    order: OrderBy,
}

impl<'a> LinkList<'a> {
    /// Checks the ordering (node columns and link columns); nothing runs yet. `dialect` is that
    /// of the database the list is then read from.
    pub fn new(
        dialect: Dialect,
        pk: i64,
        direction: Direction,
        conditions: &'a dyn Conditions,
        orderby: &[(String, bool)],
    ) -> QueryResult<Self> {
        Ok(Self { dialect, pk, direction, conditions, order: link_order(dialect, orderby)? })
    }

    fn push_from_where(&self, q: &mut Query) -> QueryResult<()> {
        let (near, far) = self.direction.ends();
        q.push(&format!(" FROM db_dblink l JOIN db_dbnode n ON n.id = l.{far} WHERE l.{near} = "));
        q.bind_int(self.pk);
        self.conditions.push(q, &Scope { entity: &NODE, extra: &LINK_COLUMNS })
    }

    fn count_query(&self) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT count(*)");
        self.push_from_where(&mut q)?;
        Ok(q)
    }

    /// The number of matching links (through the result cache).
    pub async fn count(&self, db: &Db) -> QueryResult<i64> {
        Ok(db.fetch_count_cached(self.count_query()?).await?)
    }

    fn rows_query(&self, limit: i64, offset: i64) -> QueryResult<Query> {
        let mut q = Query::new(self.dialect);
        q.push("SELECT l.label, l.type, ");
        push_selects(&mut q, &NODE, &NodeRow::COLUMNS);
        self.push_from_where(&mut q)?;
        q.push(self.order.sql());
        q.push(" LIMIT ").bind_int(limit).push(" OFFSET ").bind_int(offset);
        Ok(q)
    }

    /// The matching links `offset..offset + limit`, in order.
    pub async fn rows(&self, db: &Db, limit: i64, offset: i64) -> QueryResult<Vec<LinkRow>> {
        let mut names = vec!["link_label", "link_type"];
        names.extend(NodeRow::COLUMNS);
        let rows = db.fetch_all(self.rows_query(limit, offset)?).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut r = Record::new(&names, row);
                LinkRow {
                    link_label: r.text("link_label"),
                    link_type: r.text("link_type"),
                    node: NodeRow::read(&mut r),
                }
            })
            .collect())
    }
}

// ---------------------------------------------------------------------------------------------
// The tree of direct neighbours

/// A node as the provenance tree shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeNode {
    pub id: i64,
    pub uuid: String,
    pub node_type: String,
    pub process_type: Option<String>,
    pub label: String,
    pub ctime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
    /// JSON text of the attributes (`None` when NULL).
    pub attributes: Option<String>,
    pub computer_label: Option<String>,
}

/// A neighbour in the tree, with the link's label and type.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeLink {
    pub link_label: Option<String>,
    pub link_type: Option<String>,
    pub node: TreeNode,
}

const TREE_COLUMNS: [&str; 8] = ["id", "uuid", "node_type", "process_type", "label", "ctime", "mtime", "attributes"];

fn push_tree_columns(q: &mut Query) {
    push_selects(q, &NODE, &TREE_COLUMNS);
    q.push(", c.label");
}

fn tree_names(with_link: bool) -> Vec<&'static str> {
    let mut names = if with_link { vec!["link_label", "link_type"] } else { Vec::new() };
    names.extend(TREE_COLUMNS);
    names.push("computer_label");
    names
}

fn read_tree_node(r: &mut Record<'_>) -> TreeNode {
    TreeNode {
        id: r.int("id").unwrap_or_default(),
        uuid: r.text("uuid").unwrap_or_default(),
        node_type: r.text("node_type").unwrap_or_default(),
        process_type: r.text("process_type"),
        label: r.text("label").unwrap_or_default(),
        ctime: r.time("ctime"),
        mtime: r.time("mtime"),
        attributes: r.text("attributes"),
        computer_label: r.text("computer_label"),
    }
}

/// Node `pk` as the root of its tree.
pub async fn tree_node(db: &Db, pk: i64) -> QueryResult<TreeNode> {
    let mut q = db.query();
    q.push("SELECT ");
    push_tree_columns(&mut q);
    q.push(" FROM db_dbnode n LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE n.id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| no_node(pk))?;
    let names = tree_names(false);
    Ok(read_tree_node(&mut Record::new(&names, row)))
}

/// The number of links of node `pk` in `direction`.
pub async fn link_count(db: &Db, pk: i64, direction: Direction) -> QueryResult<i64> {
    let (near, _) = direction.ends();
    let mut q = db.query();
    q.push(&format!("SELECT count(*) FROM db_dblink l WHERE l.{near} = ")).bind_int(pk);
    Ok(db.fetch_count(q).await?)
}

/// The first `limit` neighbours of node `pk` in `direction`, by node id then link id.
pub async fn tree_links(db: &Db, pk: i64, direction: Direction, limit: i64) -> QueryResult<Vec<TreeLink>> {
    let (near, far) = direction.ends();
    let mut q = db.query();
    q.push("SELECT l.label, l.type, ");
    push_tree_columns(&mut q);
    q.push(&format!(
        " FROM db_dblink l JOIN db_dbnode n ON n.id = l.{far} LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE l.{near} = "
    ));
    q.bind_int(pk).push(" ORDER BY n.id ASC, l.id ASC LIMIT ").bind_int(limit);
    let names = tree_names(true);
    let rows = db.fetch_all(q).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut r = Record::new(&names, row);
            TreeLink { link_label: r.text("link_label"), link_type: r.text("link_type"), node: read_tree_node(&mut r) }
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Processes and calculations

/// One log record of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub dbnode_id: Option<i64>,
    pub levelname: Option<String>,
    pub loggername: Option<String>,
    pub message: Option<String>,
    pub time: Option<Timestamp>,
}

/// The first `max_rows` log records of node `pk`, oldest first.
pub async fn process_logs(db: &Db, pk: i64, max_rows: i64) -> QueryResult<Vec<LogRow>> {
    const NAMES: [&str; 5] = ["dbnode_id", "levelname", "loggername", "message", "time"];
    let mut q = db.query();
    q.push("SELECT dbnode_id, levelname, loggername, message, ").time_text("time");
    q.push(" FROM db_dblog WHERE dbnode_id = ").bind_int(pk).push(" ORDER BY id ASC LIMIT ").bind_int(max_rows);
    let rows = db.fetch_all(q).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut r = Record::new(&NAMES, row);
            LogRow {
                dbnode_id: r.int("dbnode_id"),
                levelname: r.text("levelname"),
                loggername: r.text("loggername"),
                message: r.text("message"),
                time: r.time("time"),
            }
        })
        .collect())
}

/// The repository metadata (JSON text, `{}` when NULL) of the `retrieved` output of
/// calculation `pk`, or `None` when it has none.
pub async fn retrieved_repository_metadata(db: &Db, pk: i64) -> QueryResult<Option<String>> {
    let mut q = db.query();
    q.push("SELECT ").json_text("n.repository_metadata");
    q.push(" FROM db_dblink l JOIN db_dbnode n ON n.id = l.output_id WHERE l.input_id = ");
    q.bind_int(pk).push(" AND l.label = 'retrieved' AND l.type = 'create' ORDER BY n.id LIMIT 1");
    Ok(db
        .fetch_optional(q)
        .await?
        .map(|row| row.into_iter().next().and_then(|cell| cell.into_string()).unwrap_or_else(|| "{}".into())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::lists::Unfiltered;

    #[test]
    fn link_list_queries() {
        let orderby = [("link_label".to_string(), false)];
        let list = LinkList::new(Dialect::Sqlite, 5, Direction::Incoming, &Unfiltered, &orderby).unwrap();
        assert_eq!(
            list.count_query().unwrap().sql,
            "SELECT count(*) FROM db_dblink l JOIN db_dbnode n ON n.id = l.input_id WHERE l.output_id = ?1"
        );
        assert_eq!(
            list.rows_query(10, 0).unwrap().sql,
            "SELECT l.label, l.type, n.id, n.label, n.node_type, n.process_type, n.ctime, n.mtime, n.uuid, \
             n.user_id FROM db_dblink l JOIN db_dbnode n ON n.id = l.input_id WHERE l.output_id = ?1 \
             ORDER BY l.label ASC, n.id ASC, l.id ASC LIMIT 10 OFFSET 0"
        );
        assert!(
            LinkList::new(Dialect::Sqlite, 5, Direction::Outgoing, &Unfiltered, &[("attributes".into(), false)])
                .is_err()
        );
    }
}
