//! The one model of the AiiDA tables a client can reach, used by the REST resources and by the
//! QueryBuilder alike: per table its SQL name and alias, its columns in table order (the order of
//! a QueryBuilder `**`) with their kinds and nullability, the names clients may use instead of a
//! column, the REST default projection, the name messages use, and the private columns.
//!
//! Also the one rule for where NULL sorts ([`order_direction`]).

use crate::storage::db::sql::Dialect;

/// How a column is stored, which decides how it is selected, compared and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Uuid,
    Time,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    /// Whether the column can hold NULL (see [`order_direction`]).
    pub nullable: bool,
}

/// A column that is never NULL.
pub const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: false }
}

/// A column that can be NULL.
pub const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, nullable: true }
}

/// An AiiDA table (or the rows of a recursive walk, which the QueryBuilder treats as one).
#[derive(Debug)]
pub struct Table {
    /// Name of the table in SQL (empty for a walk, which is a CTE).
    pub sql_name: &'static str,
    /// SQL alias of the table in the REST resources' queries.
    pub alias: &'static str,
    /// Name of the table in QueryBuilder messages.
    pub label: &'static str,
    /// Class name in REST "not found" messages, as the reference words them.
    pub orm_name: &'static str,
    /// Every column, in the order of the table definition (the order of `**`).
    pub columns: &'static [Column],
    /// Alternative names clients may use for a column: (alias, column).
    pub aliases: &'static [(&'static str, &'static str)],
    /// Columns the REST resource returns for each row, in the reference's projection.
    pub projection: &'static [&'static str],
    /// Columns that are never returned, filtered or ordered on (personal data), and what a
    /// client that asks for them is told.
    pub private: &'static [&'static str],
    pub private_message: &'static str,
}

impl Table {
    /// Resolves a client-given name (column or alias) to a column, private ones included.
    pub fn column(&self, name: &str) -> Option<Column> {
        let name = self.aliases.iter().find(|(a, _)| *a == name).map(|(_, c)| *c).unwrap_or(name);
        self.columns.iter().copied().find(|c| c.name == name)
    }

    /// Resolves a client-given name (column or alias) to a column that may be filtered or
    /// ordered on, or explains why it cannot be used.
    pub fn usable_column(&self, name: &str) -> Result<Column, String> {
        match self.column(name) {
            Some(c) if self.is_private(c.name) => Err(self.private_message.to_string()),
            Some(c) => Ok(c),
            None => {
                let mut names = self.names();
                names.sort();
                Err(format!("{name} is not a column of {}; valid columns are: {}", self.sql_name, names.join(", ")))
            }
        }
    }

    pub fn is_private(&self, column: &str) -> bool {
        self.private.contains(&column)
    }

    /// The names a client may use, in table order, each with its alias: `id (or pk)`.
    pub fn names(&self) -> Vec<String> {
        self.columns
            .iter()
            .filter(|c| !self.is_private(c.name))
            .map(|c| match self.aliases.iter().find(|(_, target)| *target == c.name) {
                Some((alias, _)) => format!("{} (or {alias})", c.name),
                None => c.name.to_string(),
            })
            .collect()
    }

    /// `alias.column`
    pub fn qualified(&self, column: &str) -> String {
        format!("{}.{}", self.alias, column)
    }

    pub fn has_id(&self) -> bool {
        self.columns.iter().any(|c| c.name == "id")
    }
}

/// Where a row goes in `ORDER BY`: the direction, and on PostgreSQL for a column that can hold
/// NULL the placement SQLite (the reference's storage) gives NULL, smallest of all. Only those
/// columns get the clause, which would keep the planner from using an index for the others.
pub fn order_direction(dialect: Dialect, desc: bool, nullable: bool) -> &'static str {
    match (desc, dialect == Dialect::Postgres && nullable) {
        (false, false) => " ASC",
        (true, false) => " DESC",
        (false, true) => " ASC NULLS FIRST",
        (true, true) => " DESC NULLS LAST",
    }
}

const NO_PRIVATE: &str = "";

pub static NODE: Table = Table {
    sql_name: "db_dbnode",
    alias: "n",
    label: "node",
    orm_name: "node.Node",
    columns: &[
        col("id", Kind::Int),
        col("uuid", Kind::Uuid),
        col("node_type", Kind::Text),
        nullable("process_type", Kind::Text),
        col("label", Kind::Text),
        col("description", Kind::Text),
        col("ctime", Kind::Time),
        col("mtime", Kind::Time),
        nullable("attributes", Kind::Json),
        nullable("extras", Kind::Json),
        col("repository_metadata", Kind::Json),
        nullable("dbcomputer_id", Kind::Int),
        col("user_id", Kind::Int),
    ],
    aliases: &[("pk", "id"), ("computer", "dbcomputer_id"), ("user", "user_id")],
    projection: &["id", "label", "node_type", "process_type", "ctime", "mtime", "uuid", "user_id"],
    private: &[],
    private_message: NO_PRIVATE,
};

pub static COMPUTER: Table = Table {
    sql_name: "db_dbcomputer",
    alias: "c",
    label: "computer",
    orm_name: "Computer",
    columns: &[
        col("id", Kind::Int),
        col("uuid", Kind::Uuid),
        col("label", Kind::Text),
        col("hostname", Kind::Text),
        col("description", Kind::Text),
        col("scheduler_type", Kind::Text),
        col("transport_type", Kind::Text),
        col("metadata", Kind::Json),
    ],
    aliases: &[("pk", "id")],
    projection: &["id", "uuid", "label", "hostname", "description", "scheduler_type", "transport_type", "metadata"],
    private: &[],
    private_message: NO_PRIVATE,
};

pub static USER: Table = Table {
    sql_name: "db_dbuser",
    alias: "u",
    label: "user",
    orm_name: "User",
    columns: &[
        col("id", Kind::Int),
        col("email", Kind::Text),
        col("first_name", Kind::Text),
        col("last_name", Kind::Text),
        col("institution", Kind::Text),
    ],
    aliases: &[("pk", "id")],
    projection: &["id", "first_name", "last_name", "institution"],
    // Personal data: the server never hands out addresses (the reference does), and filtering or
    // ordering on one would reveal it one character at a time.
    private: &["email"],
    private_message: "email addresses are private: they cannot be returned, filtered or ordered on",
};

pub static GROUP: Table = Table {
    sql_name: "db_dbgroup",
    alias: "g",
    label: "group",
    orm_name: "groups.Group",
    columns: &[
        col("id", Kind::Int),
        col("uuid", Kind::Uuid),
        col("label", Kind::Text),
        col("type_string", Kind::Text),
        col("time", Kind::Time),
        col("description", Kind::Text),
        nullable("extras", Kind::Json),
        col("user_id", Kind::Int),
    ],
    aliases: &[("pk", "id"), ("user", "user_id")],
    projection: &["id", "uuid", "label", "type_string", "time", "description", "extras", "user_id"],
    private: &[],
    private_message: NO_PRIVATE,
};

pub static LINK: Table = Table {
    sql_name: "db_dblink",
    alias: "l",
    label: "link",
    orm_name: "Link",
    columns: &[
        col("id", Kind::Int),
        col("input_id", Kind::Int),
        col("output_id", Kind::Int),
        col("label", Kind::Text),
        col("type", Kind::Text),
    ],
    aliases: &[("pk", "id")],
    projection: &["id", "input_id", "output_id", "label", "type"],
    private: &[],
    private_message: NO_PRIVATE,
};

pub static COMMENT: Table = Table {
    sql_name: "db_dbcomment",
    alias: "cm",
    label: "comment",
    orm_name: "Comment",
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
    projection: &["id", "uuid", "dbnode_id", "ctime", "mtime", "user_id", "content"],
    private: &[],
    private_message: NO_PRIVATE,
};

pub static LOG: Table = Table {
    sql_name: "db_dblog",
    alias: "lg",
    label: "log",
    orm_name: "Log",
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
    projection: &["id", "uuid", "time", "loggername", "levelname", "dbnode_id", "message", "metadata"],
    private: &[],
    private_message: NO_PRIVATE,
};

/// The membership table between a group and a node.
pub static GROUP_NODE: Table = Table {
    sql_name: "db_dbgroup_dbnodes",
    alias: "gn",
    label: "group membership",
    orm_name: "GroupNode",
    columns: &[col("id", Kind::Int), col("dbnode_id", Kind::Int), col("dbgroup_id", Kind::Int)],
    aliases: &[("pk", "id")],
    projection: &["id", "dbnode_id", "dbgroup_id"],
    private: &[],
    private_message: NO_PRIVATE,
};

/// The rows of a recursive walk over links (edge of the QueryBuilder's `with_ancestors` /
/// `with_descendants`); not a stored table but a CTE.
pub static WALK: Table = Table {
    sql_name: "",
    alias: "w",
    label: "ancestor/descendant walk",
    orm_name: "",
    columns: &[col("ancestor_id", Kind::Int), col("descendant_id", Kind::Int), col("depth", Kind::Int)],
    aliases: &[],
    projection: &["ancestor_id", "descendant_id", "depth"],
    private: &[],
    private_message: NO_PRIVATE,
};

/// The kinds of entity a QueryBuilder path item can be.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_private_and_unknown_columns() {
        assert_eq!(NODE.column("pk").unwrap().name, "id");
        assert!(NODE.column("process_type").unwrap().nullable);
        assert!(!NODE.column("id").unwrap().nullable);
        assert_eq!(USER.usable_column("email").unwrap_err(), USER.private_message);
        let err = NODE.usable_column("bogus").unwrap_err();
        assert!(err.starts_with("bogus is not a column of db_dbnode; valid columns are: attributes, ctime,"), "{err}");
        assert_eq!(USER.names(), ["id (or pk)", "first_name", "last_name", "institution"]);
    }

    #[test]
    fn nulls_sort_as_in_sqlite() {
        assert_eq!(order_direction(Dialect::Sqlite, true, true), " DESC");
        assert_eq!(order_direction(Dialect::Postgres, false, false), " ASC");
        assert_eq!(order_direction(Dialect::Postgres, false, true), " ASC NULLS FIRST");
        assert_eq!(order_direction(Dialect::Postgres, true, true), " DESC NULLS LAST");
    }
}
