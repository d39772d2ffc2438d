//! The aggregate queries over the whole node table that the statistics and type-tree answers
//! are made from. They read every node row (about a second at 10^6 nodes), so they are built
//! here, in one place, both for the query layer that answers with them and for the warm-up
//! that runs them in the background as soon as a storage opens ([`super::Db::warm_up`]): the
//! warm-up fills the result cache under the very keys the answers look up.

use super::{Dialect, Query};

/// `(node_type, count)` of the nodes (of `user`, when given).
pub fn node_types(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT node_type, count(*) FROM db_dbnode");
    push_user(&mut q, user);
    q.push(" GROUP BY node_type");
    q
}

/// `(YYYY-MM-DD, count)` of the nodes (of `user`, when given) by UTC day of creation.
pub fn ctime_days(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT ");
    push_utc_day(&mut q, "ctime");
    q.push(" AS day, count(*) FROM db_dbnode");
    push_user(&mut q, user);
    q.push(" GROUP BY day");
    q
}

/// `(node_type, process_type, count)` of the nodes (of `user`, when given).
pub fn full_types(dialect: Dialect, user: Option<i64>) -> Query {
    let mut q = Query::new(dialect);
    q.push("SELECT node_type, process_type, count(*) FROM db_dbnode");
    if user.is_none() && dialect == Dialect::Sqlite {
        // Every row is read anyway; SQLite would otherwise walk the node_type index and fetch
        // each row out of order, which is about twice as slow.
        q.push(" NOT INDEXED");
    }
    push_user(&mut q, user);
    q.push(" GROUP BY node_type, process_type");
    q
}

/// The queries a storage warms up with when it opens: those of the answers for all users.
pub fn warm_up(dialect: Dialect) -> Vec<Query> {
    vec![node_types(dialect, None), ctime_days(dialect, None), full_types(dialect, None)]
}

fn push_user(q: &mut Query, user: Option<i64>) {
    if let Some(user) = user {
        q.push(" WHERE user_id = ").bind_int(user);
    }
}

/// The UTC calendar day (`YYYY-MM-DD`) of a timestamp column. SQLite storage holds naive UTC
/// text, so the day is its first ten characters.
pub fn push_utc_day(q: &mut Query, column: &str) {
    match q.dialect {
        Dialect::Sqlite => q.push("substr(").push(column).push(", 1, 10)"),
        Dialect::Postgres => q.push("to_char(").push(column).push(" AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_expression_follows_the_dialect() {
        let mut q = Query::new(Dialect::Sqlite);
        push_utc_day(&mut q, "ctime");
        assert_eq!(q.sql, "substr(ctime, 1, 10)");
        let mut q = Query::new(Dialect::Postgres);
        push_utc_day(&mut q, "ctime");
        assert_eq!(q.sql, "to_char(ctime AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
    }

    #[test]
    fn the_warm_up_runs_the_queries_of_the_answers_for_all_users() {
        let keys: Vec<String> = warm_up(Dialect::Sqlite).iter().map(super::super::cache::key).collect();
        assert!(keys.contains(&super::super::cache::key(&full_types(Dialect::Sqlite, None))));
        assert!(!keys.contains(&super::super::cache::key(&node_types(Dialect::Sqlite, Some(1)))));
        assert_eq!(
            node_types(Dialect::Postgres, Some(2)).sql,
            "SELECT node_type, count(*) FROM db_dbnode WHERE user_id = $1::int8 GROUP BY node_type"
        );
    }
}
