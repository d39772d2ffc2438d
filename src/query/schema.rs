//! The AiiDA tables the REST resources read, and the columns a client may filter and order on.

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
}

pub(crate) const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

/// Whether a column of an AiiDA table can hold NULL. On PostgreSQL only those need an explicit
/// `NULLS FIRST/LAST` to sort as SQLite does, and the clause would keep the planner from using
/// an index for the others.
pub fn is_nullable(column: &str) -> bool {
    matches!(column, "process_type" | "dbcomputer_id" | "attributes" | "extras" | "val")
}

/// A table exposed as a REST resource.
#[derive(Debug)]
pub struct Entity {
    pub table: &'static str,
    /// SQL alias of the table in every query.
    pub alias: &'static str,
    pub columns: &'static [Column],
    /// Alternative names clients may use for a column (QueryBuilder aliases).
    pub aliases: &'static [(&'static str, &'static str)],
    /// Columns returned for each row, in the reference's projection.
    pub projection: &'static [&'static str],
    /// Class name used in "not found" messages, as the reference words them.
    pub orm_name: &'static str,
    /// Columns that are never returned, filtered or ordered on (personal data).
    pub private: &'static [&'static str],
}

impl Entity {
    /// Resolves a client-given name (column or alias) to a column, or explains why it cannot be
    /// used.
    pub fn usable_column(&self, name: &str) -> Result<Column, String> {
        match self.column(name) {
            Some(c) if self.private.contains(&c.name) => {
                Err(format!("{name} is private: it cannot be returned, filtered or ordered on"))
            }
            Some(c) => Ok(c),
            None => Err(format!("{name} is not a column of {}; valid columns are: {}", self.table, self.valid_names())),
        }
    }

    /// Resolves a client-given name (column or alias) to a column.
    pub fn column(&self, name: &str) -> Option<Column> {
        let name = self.aliases.iter().find(|(a, _)| *a == name).map(|(_, c)| *c).unwrap_or(name);
        self.columns.iter().copied().find(|c| c.name == name)
    }

    /// The names a client may use, for error messages.
    pub fn valid_names(&self) -> String {
        let mut names: Vec<String> = self
            .columns
            .iter()
            .filter(|c| !self.private.contains(&c.name))
            .map(|c| match self.aliases.iter().find(|(_, target)| *target == c.name) {
                Some((alias, _)) => format!("{} (or {alias})", c.name),
                None => c.name.to_string(),
            })
            .collect();
        names.sort();
        names.join(", ")
    }

    /// `alias.column`
    pub fn qualified(&self, column: &str) -> String {
        format!("{}.{}", self.alias, column)
    }
}

/// Every column of the node table, in table order (the order of a QueryBuilder `**`).
pub const NODE_COLUMNS: &[Column] = &[
    col("id", Kind::Int),
    col("uuid", Kind::Uuid),
    col("node_type", Kind::Text),
    col("process_type", Kind::Text),
    col("label", Kind::Text),
    col("description", Kind::Text),
    col("ctime", Kind::Time),
    col("mtime", Kind::Time),
    col("attributes", Kind::Json),
    col("extras", Kind::Json),
    col("repository_metadata", Kind::Json),
    col("dbcomputer_id", Kind::Int),
    col("user_id", Kind::Int),
];

/// Every column of the computer table, in table order (the order of a QueryBuilder `**`).
pub const COMPUTER_COLUMNS: &[Column] = &[
    col("id", Kind::Int),
    col("uuid", Kind::Uuid),
    col("label", Kind::Text),
    col("hostname", Kind::Text),
    col("description", Kind::Text),
    col("scheduler_type", Kind::Text),
    col("transport_type", Kind::Text),
    col("metadata", Kind::Json),
];

/// Every column of the user table, in table order (the order of a QueryBuilder `**`).
pub const USER_COLUMNS: &[Column] = &[
    col("id", Kind::Int),
    col("email", Kind::Text),
    col("first_name", Kind::Text),
    col("last_name", Kind::Text),
    col("institution", Kind::Text),
];

/// Every column of the group table, in table order (the order of a QueryBuilder `**`).
pub const GROUP_COLUMNS: &[Column] = &[
    col("id", Kind::Int),
    col("uuid", Kind::Uuid),
    col("label", Kind::Text),
    col("type_string", Kind::Text),
    col("time", Kind::Time),
    col("description", Kind::Text),
    col("extras", Kind::Json),
    col("user_id", Kind::Int),
];

pub static NODE: Entity = Entity {
    table: "db_dbnode",
    alias: "n",
    columns: NODE_COLUMNS,
    aliases: &[("pk", "id"), ("computer", "dbcomputer_id"), ("user", "user_id")],
    projection: &["id", "label", "node_type", "process_type", "ctime", "mtime", "uuid", "user_id"],
    orm_name: "node.Node",
    private: &[],
};

pub static COMPUTER: Entity = Entity {
    table: "db_dbcomputer",
    alias: "c",
    columns: COMPUTER_COLUMNS,
    aliases: &[("pk", "id")],
    projection: &["id", "uuid", "label", "hostname", "description", "scheduler_type", "transport_type", "metadata"],
    orm_name: "Computer",
    private: &[],
};

pub static USER: Entity = Entity {
    table: "db_dbuser",
    alias: "u",
    columns: USER_COLUMNS,
    aliases: &[("pk", "id")],
    projection: &["id", "first_name", "last_name", "institution"],
    orm_name: "User",
    // Filtering or ordering on an address would reveal it one character at a time.
    private: &["email"],
};

pub static GROUP: Entity = Entity {
    table: "db_dbgroup",
    alias: "g",
    columns: GROUP_COLUMNS,
    aliases: &[("pk", "id"), ("user", "user_id")],
    projection: &["id", "uuid", "label", "type_string", "time", "description", "extras", "user_id"],
    orm_name: "groups.Group",
    private: &[],
};
