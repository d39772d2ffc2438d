//! The tables a QueryBuilder query can reach, with every column (`**` projects them all), the
//! aliases AiiDA accepts for some of them, and the edge tables that joins go through.

use crate::query::schema::{self, Column, Kind, col};

#[derive(Debug)]
pub struct Table {
    pub sql_name: &'static str,
    /// Name used in messages.
    pub label: &'static str,
    /// In the order of the table definition, which is the order of `**`.
    pub columns: &'static [Column],
    pub aliases: &'static [(&'static str, &'static str)],
    /// Columns that are never returned, and cannot be filtered or ordered on either.
    pub hidden: &'static [&'static str],
}

/// The answer to a filter or an order on a hidden column (only users' emails are hidden).
pub const HIDDEN_MESSAGE: &str = "email addresses are private: they cannot be returned, filtered or ordered on";

impl Table {
    pub fn column(&self, name: &str) -> Option<Column> {
        let name = self.aliases.iter().find(|(a, _)| *a == name).map(|(_, c)| *c).unwrap_or(name);
        self.columns.iter().copied().find(|c| c.name == name)
    }

    pub fn valid_names(&self) -> String {
        self.columns
            .iter()
            .filter(|c| !self.is_hidden(c.name))
            .map(|c| match self.aliases.iter().find(|(_, target)| *target == c.name) {
                Some((alias, _)) => format!("{} (or {alias})", c.name),
                None => c.name.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn is_hidden(&self, column: &str) -> bool {
        self.hidden.contains(&column)
    }

    pub fn has_id(&self) -> bool {
        self.columns.iter().any(|c| c.name == "id")
    }
}

pub static NODE: Table = Table {
    sql_name: "db_dbnode",
    label: "node",
    columns: schema::NODE_COLUMNS,
    aliases: &[("pk", "id"), ("computer", "dbcomputer_id"), ("user", "user_id")],
    hidden: &[],
};

pub static GROUP: Table = Table {
    sql_name: "db_dbgroup",
    label: "group",
    columns: schema::GROUP_COLUMNS,
    aliases: &[("pk", "id"), ("user", "user_id")],
    hidden: &[],
};

pub static COMPUTER: Table = Table {
    sql_name: "db_dbcomputer",
    label: "computer",
    columns: schema::COMPUTER_COLUMNS,
    aliases: &[("pk", "id")],
    hidden: &[],
};

pub static USER: Table = Table {
    sql_name: "db_dbuser",
    label: "user",
    columns: schema::USER_COLUMNS,
    aliases: &[("pk", "id")],
    // Personal data: the server never hands out addresses (the reference does).
    hidden: &["email"],
};

pub static LINK: Table = Table {
    sql_name: "db_dblink",
    label: "link",
    columns: &[
        col("id", Kind::Int),
        col("input_id", Kind::Int),
        col("output_id", Kind::Int),
        col("label", Kind::Text),
        col("type", Kind::Text),
    ],
    aliases: &[("pk", "id")],
    hidden: &[],
};

pub static COMMENT: Table = Table {
    sql_name: "db_dbcomment",
    label: "comment",
    columns: &[
        col("id", Kind::Int),
        col("uuid", Kind::Uuid),
        col("dbnode_id", Kind::Int),
        col("ctime", Kind::Time),
        col("mtime", Kind::Time),
        col("user_id", Kind::Int),
        col("content", Kind::Text),
    ],
    aliases: &[("pk", "id"), ("user", "user_id"), ("node", "dbnode_id")],
    hidden: &[],
};

pub static LOG: Table = Table {
    sql_name: "db_dblog",
    label: "log",
    columns: &[
        col("id", Kind::Int),
        col("uuid", Kind::Uuid),
        col("time", Kind::Time),
        col("loggername", Kind::Text),
        col("levelname", Kind::Text),
        col("dbnode_id", Kind::Int),
        col("message", Kind::Text),
        col("metadata", Kind::Json),
    ],
    aliases: &[("pk", "id"), ("node", "dbnode_id")],
    hidden: &[],
};

/// The membership table between a group and a node (edge of `with_group` / group `with_node`).
pub static GROUP_NODE: Table = Table {
    sql_name: "db_dbgroup_dbnodes",
    label: "group membership",
    columns: &[col("id", Kind::Int), col("dbnode_id", Kind::Int), col("dbgroup_id", Kind::Int)],
    aliases: &[("pk", "id")],
    hidden: &[],
};

/// The rows of a recursive walk over links (edge of `with_ancestors` / `with_descendants`);
/// not a stored table but a CTE.
pub static WALK: Table = Table {
    sql_name: "",
    label: "ancestor/descendant walk",
    columns: &[col("ancestor_id", Kind::Int), col("descendant_id", Kind::Int), col("depth", Kind::Int)],
    aliases: &[],
    hidden: &[],
};

/// The kinds of entity a path item can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Node,
    Group,
    Computer,
    User,
    Link,
    Comment,
    Log,
}

impl Entity {
    pub fn table(self) -> &'static Table {
        match self {
            Entity::Node => &NODE,
            Entity::Group => &GROUP,
            Entity::Computer => &COMPUTER,
            Entity::User => &USER,
            Entity::Link => &LINK,
            Entity::Comment => &COMMENT,
            Entity::Log => &LOG,
        }
    }

    pub fn name(self) -> &'static str {
        self.table().label
    }
}
