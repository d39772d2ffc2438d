//! FROM and JOIN: the path items, the edges between them and the recursive walks of
//! `with_ancestors`/`with_descendants`.

use crate::query::tables::{Entity, GROUP_NODE};
use crate::query::{QueryError, QueryResult};

use super::super::parse::{JoinKind, Target};
use super::{Builder, WALK_LINK_TYPES, WALK_MAX_DEPTH};

impl Builder<'_> {
    /// `WITH RECURSIVE` walks for `with_ancestors`/`with_descendants` joins.
    pub(super) fn push_with(&mut self) -> QueryResult<()> {
        let walks: Vec<(usize, usize, JoinKind)> = self
            .qb
            .vertices
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let join = v.join.as_ref()?;
                matches!(join.kind, JoinKind::WithAncestors | JoinKind::WithDescendants)
                    .then_some((i, join.with, join.kind))
            })
            .collect();
        if walks.is_empty() {
            return Ok(());
        }
        self.q.push("WITH RECURSIVE ");
        for (n, (i, with, kind)) in walks.into_iter().enumerate() {
            if n > 0 {
                self.q.push(", ");
            }
            let (start, next) = (format!("r{i}"), format!("l{i}"));
            // `with_ancestors` X: the new vertex is a descendant of X, so walk down from X;
            // `with_descendants` X: walk up.
            let down = kind == JoinKind::WithAncestors;
            let near = if down { "input_id" } else { "output_id" };
            self.q.push(&format!(
                "w{i}(ancestor_id, descendant_id, depth) AS (SELECT {next}.input_id, {next}.output_id, 0 \
                 FROM db_dbnode {start} JOIN db_dblink {next} ON {next}.{near} = {start}.id \
                 WHERE {next}.type IN {WALK_LINK_TYPES}"
            ));
            // The walk starts from the nodes that pass X's own filters, as in AiiDA.
            if let Some(cond) = self.qb.conditions_of(Target::Vertex(with)) {
                self.vertex_alias_override = Some((with, start.clone()));
                self.q.push(" AND ");
                let result = self.push_cond(cond);
                self.vertex_alias_override = None;
                result?;
            }
            let (ancestor, descendant) =
                if down { ("w.ancestor_id", "m.output_id") } else { ("m.input_id", "w.descendant_id") };
            let link_end = if down { "w.descendant_id" } else { "w.ancestor_id" };
            self.q.push(&format!(
                " UNION ALL SELECT {ancestor}, {descendant}, w.depth + 1 FROM w{i} w \
                 JOIN db_dblink m ON m.{near} = {link_end} WHERE m.type IN {WALK_LINK_TYPES} AND w.depth < "
            ));
            self.bind_int(WALK_MAX_DEPTH);
            self.q.push(")");
        }
        self.q.push(" ");
        Ok(())
    }

    pub(super) fn push_from_where(&mut self) -> QueryResult<()> {
        let qb = self.qb;
        let first = &qb.vertices[0];
        self.q.push(" FROM ").push(first.entity.table().sql_name).push(" t0");
        for (i, vertex) in qb.vertices.iter().enumerate().skip(1) {
            let join = vertex.join.as_ref().expect("later vertices are joined");
            let table = vertex.entity.table().sql_name;
            let (j, x) = (format!("t{i}"), format!("t{}", join.with));
            let e = format!("e{i}");
            let outer = if join.outer { " LEFT OUTER JOIN " } else { " JOIN " };
            let sql = match (join.kind, vertex.entity) {
                (JoinKind::WithIncoming, _) => {
                    format!("{outer}db_dblink {e} ON {e}.input_id = {x}.id{outer}{table} {j} ON {e}.output_id = {j}.id")
                }
                (JoinKind::WithOutgoing, _) => {
                    format!(" JOIN db_dblink {e} ON {e}.output_id = {x}.id{outer}{table} {j} ON {e}.input_id = {j}.id")
                }
                (JoinKind::WithAncestors, _) => {
                    format!(
                        " JOIN w{i} {e} ON {e}.ancestor_id = {x}.id{outer}{table} {j} ON {e}.descendant_id = {j}.id"
                    )
                }
                (JoinKind::WithDescendants, _) => {
                    format!(
                        " JOIN w{i} {e} ON {e}.descendant_id = {x}.id{outer}{table} {j} ON {e}.ancestor_id = {j}.id"
                    )
                }
                (JoinKind::WithGroup, Entity::Node) => format!(
                    " JOIN {} {e} ON {e}.dbgroup_id = {x}.id{outer}{table} {j} ON {j}.id = {e}.dbnode_id",
                    GROUP_NODE.sql_name
                ),
                (JoinKind::WithNode, Entity::Group) => format!(
                    " JOIN {} {e} ON {e}.dbnode_id = {x}.id{outer}{table} {j} ON {j}.id = {e}.dbgroup_id",
                    GROUP_NODE.sql_name
                ),
                (JoinKind::WithComputer, Entity::Node) => {
                    format!("{outer}{table} {j} ON {j}.dbcomputer_id = {x}.id")
                }
                (JoinKind::WithUser, Entity::Node | Entity::Group | Entity::Comment) => {
                    format!("{outer}{table} {j} ON {j}.user_id = {x}.id")
                }
                (JoinKind::WithComment | JoinKind::WithLog, Entity::Node) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.dbnode_id")
                }
                (JoinKind::WithNode, Entity::Computer) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.dbcomputer_id")
                }
                (JoinKind::WithNode | JoinKind::WithGroup | JoinKind::WithComment, Entity::User) => {
                    format!("{outer}{table} {j} ON {j}.id = {x}.user_id")
                }
                (JoinKind::WithNode, Entity::Comment | Entity::Log) => {
                    format!("{outer}{table} {j} ON {j}.dbnode_id = {x}.id")
                }
                (kind, entity) => {
                    return Err(QueryError::Internal(format!(
                        "join {} of a {} passed validation",
                        kind.keyword(),
                        entity.name()
                    )));
                }
            };
            self.q.push(&sql);
        }
        let mut first_cond = true;
        for (_, cond) in &qb.filters {
            self.q.push(if first_cond { " WHERE " } else { " AND " });
            first_cond = false;
            self.push_cond(cond)?;
        }
        Ok(())
    }
}
