//! Lists and single entities of nodes, computers, users and groups: filters, ordering,
//! paging and the rows' JSON.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::query::tables::{self, Kind, Table, order_direction};
use crate::storage::db::{Cell, Db, Dialect, Query};

use super::routes::{Resource, parse_user_id};
use crate::http::params::{LIMIT_MAX, PERPAGE_DEFAULT, Params};
use crate::http::render::{cell_to_json, full_type, push_projection, row_object};
use crate::http::request::{Ctx, json_response};
use crate::query::filter::rest::{push_filter, push_full_type};

pub fn entity_of(resource: Resource) -> &'static Table {
    match resource {
        Resource::Nodes | Resource::Processes | Resource::Calcjobs => &tables::NODE,
        Resource::Computers => &tables::COMPUTER,
        Resource::Users => &tables::USER,
        Resource::Groups => &tables::GROUP,
    }
}

/// Which rows, in what order, which slice.
pub struct Window {
    pub limit: i64,
    pub offset: i64,
    /// `(page, last page)` when the request asked for a page.
    pub page: Option<(u64, u64)>,
}

/// Checks the paging keys against each other (before any query runs).
pub fn check_paging(params: &Params, page: Option<u64>) -> ApiResult<()> {
    let limit_or_offset = params.limit.is_some() || params.offset.is_some();
    if params.perpage.is_some() && limit_or_offset {
        return Err(ApiError::bad_request("perpage key is incompatible with limit and offset"));
    }
    if page.is_some() && limit_or_offset {
        return Err(ApiError::bad_request("requesting a specific page is incompatible with limit and offset"));
    }
    if params.perpage.is_some() && page.is_none() {
        return Err(ApiError::bad_request(
            "perpage key requires that a page is requested (i.e. the path must contain /page/)",
        ));
    }
    Ok(())
}

/// Computes limit and offset from the paging keys and the total number of matching rows.
pub fn window(params: &Params, page: Option<u64>, total: i64, max_rows: i64) -> ApiResult<Window> {
    match page {
        Some(page) => {
            let perpage = params.perpage()?.unwrap_or(PERPAGE_DEFAULT);
            if perpage < 1 {
                return Err(ApiError::bad_request("perpage must be a positive integer"));
            }
            let last = if total == 0 { 1 } else { (total as u64).div_ceil(perpage as u64) };
            if page < 1 || page > last {
                return Err(ApiError::not_found(format!(
                    "Non existent page requested. The page range is [1 : {last}]"
                )));
            }
            if perpage > LIMIT_MAX {
                return Err(ApiError::bad_request(format!("Limit and perpage cannot be bigger than {LIMIT_MAX}")));
            }
            Ok(Window { limit: perpage, offset: (page as i64 - 1) * perpage, page: Some((page, last)) })
        }
        None => {
            let limit = params.limit()?.unwrap_or(LIMIT_MAX);
            if limit > LIMIT_MAX {
                return Err(ApiError::bad_request(format!("Limit and perpage cannot be bigger than {LIMIT_MAX}")));
            }
            // A negative limit means "no limit" to the reference (SQLite's LIMIT -1); the
            // server still bounds the answer.
            let limit = if limit < 0 { max_rows } else { limit };
            let offset = params.offset()?.unwrap_or(0).max(0);
            Ok(Window { limit, offset, page: None })
        }
    }
}

/// The `ORDER BY` list: the requested columns, then `id` ascending so that pages are stable.
pub fn push_order(q: &mut Query, entity: &Table, orderby: &[(String, bool)]) -> ApiResult<()> {
    push_order_with(q, entity, &[], orderby)
}

/// [`push_order`] where `extra` names further orderable (name, SQL expression) pairs, such as
/// the link columns of link lists.
pub fn push_order_with(
    q: &mut Query,
    entity: &Table,
    extra: &[(&'static str, &'static str)],
    orderby: &[(String, bool)],
) -> ApiResult<()> {
    let mut seen: Vec<&str> = Vec::new();
    q.push(" ORDER BY ");
    for (name, desc) in orderby {
        if let Some((name, sql)) = extra.iter().find(|(n, _)| n == name) {
            if !seen.contains(name) {
                seen.push(name);
                let dir = order_direction(q.dialect, *desc, false);
                q.push(sql).push(dir).push(", ");
            }
            continue;
        }
        let column = entity
            .usable_column(name)
            .map_err(|why| ApiError::bad_request(format!("cannot order by {name}: {why}")))?;
        if column.kind == Kind::Json {
            return Err(ApiError::bad_request(format!("cannot order by the JSON column {}", column.name)));
        }
        if seen.contains(&column.name) {
            continue;
        }
        seen.push(column.name);
        let qualified = entity.qualified(column.name);
        match (column.kind, q.dialect) {
            // A native uuid sorts as its canonical text does in byte order, and uses the index.
            (Kind::Uuid, Dialect::Sqlite) => q.uuid_text(&qualified),
            _ => q.push(&qualified),
        };
        let dir = order_direction(q.dialect, *desc, column.nullable);
        q.push(dir).push(", ");
    }
    if !seen.contains(&"id") {
        q.push(&entity.qualified("id")).push(" ASC, ");
    }
    q.sql.truncate(q.sql.len() - 2);
    Ok(())
}

/// Resolves a UUID or UUID prefix from the path to the primary key.
pub async fn resolve_uuid(db: &Db, entity: &Table, id: &str) -> ApiResult<i64> {
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
        [] => Err(ApiError::not_found(format!(
            "either no object's id starts with '{id}' or the corresponding object is not of type aiida.orm.{}",
            entity.orm_name
        ))),
        _ => Err(ApiError::not_found("More than one node found. Provide longer starting pattern for id.")),
    }
}

/// Resolves the identifier segment of `resource` to a primary key.
pub async fn resolve_id(db: &Db, resource: Resource, id: &str) -> ApiResult<i64> {
    let entity = entity_of(resource);
    if resource != Resource::Users {
        return resolve_uuid(db, entity, id).await;
    }
    let pk = parse_user_id(id).ok_or_else(|| ApiError::not_found(format!("'{id}' is not a user id")))?;
    let mut q = db.query();
    q.push("SELECT id FROM db_dbuser WHERE id = ").bind_int(pk);
    match db.fetch_optional(q).await? {
        Some(_) => Ok(pk),
        None => Err(ApiError::not_found(format!("no user with id {pk}"))),
    }
}

/// `GET /<resource>[/page[/<n>]]` and `GET /<resource>/<id>`.
pub async fn list(
    db: &Db,
    ctx: &Ctx,
    resource: Resource,
    id: Option<&str>,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    let params = Params::parse(&ctx.query)?;
    check_paging(&params, page)?;
    let entity = entity_of(resource);
    let is_node = resource == Resource::Nodes;
    let attributes = is_node && params.flag("attributes")?;
    let extras = is_node && params.flag("extras")?;
    if !is_node && params.full_type.is_some() {
        return Err(ApiError::bad_request("full_type can only be used with nodes"));
    }

    let pk = match id {
        Some(id) => {
            if params.has_filters() {
                return Err(ApiError::bad_request("selecting a specific id does not allow to specify filters"));
            }
            Some(resolve_id(db, resource, id).await?)
        }
        None => None,
    };
    let full_type_filter = Params::string(&params.full_type, "full_type")?;
    // The same conditions go into the count and the row query.
    let push_where = |q: &mut Query| -> ApiResult<()> {
        q.push(" WHERE 1 = 1");
        if let Some(pk) = pk {
            q.push(" AND ").push(&entity.qualified("id")).push(" = ").bind_int(pk);
        }
        for filter in &params.filters {
            push_filter(q, entity, filter)?;
        }
        if let Some(ft) = &full_type_filter {
            push_full_type(q, "n.node_type", "n.process_type", ft)?;
        }
        Ok(())
    };
    let orderby = params.orderby()?;
    // Validate ordering and the limit before touching the database.
    let mut order = db.query();
    push_order(&mut order, entity, &orderby)?;
    if page.is_none() {
        window(&params, None, 0, max_rows)?;
    }

    let from = format!(" FROM {} {}", entity.sql_name, entity.alias);
    let mut count = db.query();
    count.push("SELECT count(*)").push(&from);
    push_where(&mut count)?;
    let total = db.fetch_count_cached(count).await?;
    let window = window(&params, page, total, max_rows)?;

    let mut q = db.query();
    q.push("SELECT ");
    push_projection(&mut q, entity);
    let attribute_keys = params.key_filter("attributes").filter(|_| attributes);
    let extra_keys = params.key_filter("extras").filter(|_| extras);
    push_json_projection(&mut q, "n.attributes", attributes);
    push_json_projection(&mut q, "n.extras", extras);
    q.push(&from);
    push_where(&mut q)?;
    q.push(&order.sql);
    q.push(" LIMIT ").bind_int(window.limit).push(" OFFSET ").bind_int(window.offset);
    let rows = db.fetch_all(q).await?;

    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let mut cells = row.into_iter();
        let mut object = row_object(entity, &mut cells);
        if is_node {
            let ft = full_type(&object["node_type"], &object["process_type"]);
            object.insert("full_type".into(), ft);
            if attributes {
                object.insert("attributes".into(), take_json(&mut cells, attribute_keys.as_deref()));
            }
            if extras {
                object.insert("extras".into(), take_json(&mut cells, extra_keys.as_deref()));
            }
        }
        items.push(Value::Object(object));
    }

    let mut data = Map::new();
    data.insert(resource.name().into(), Value::Array(items));
    let body = ctx.envelope(resource.name(), Some(id.map(Value::from).unwrap_or(Value::Null)), Value::Object(data));
    let link = window.page.map(|(page, last)| ctx.page_links(page, last));
    Ok(json_response(StatusCode::OK, &body, Some(total), link))
}

fn push_json_projection(q: &mut Query, column: &str, enabled: bool) {
    if enabled {
        q.push(", ").json_text(column);
    }
}

/// The attributes/extras of a row: the whole dict, or only the requested keys (`null` for a
/// missing one). Keys are picked here rather than in SQL, so any key text works on both
/// databases and booleans stay booleans.
fn take_json(cells: &mut impl Iterator<Item = Cell>, keys: Option<&[String]>) -> Value {
    let dict = match cell_to_json(Kind::Json, cells.next().unwrap_or(Cell::Null)) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    match keys {
        None => Value::Object(dict),
        Some(keys) => {
            Value::Object(keys.iter().map(|k| (k.clone(), dict.get(k).cloned().unwrap_or(Value::Null))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::db::Dialect;

    #[test]
    fn order_appends_id() {
        let mut q = Query::new(Dialect::Sqlite);
        push_order(&mut q, &tables::NODE, &[("label".into(), true), ("pk".into(), false)]).unwrap();
        assert_eq!(q.sql, " ORDER BY n.label DESC, n.id ASC");
        let mut q = Query::new(Dialect::Sqlite);
        push_order(&mut q, &tables::NODE, &[]).unwrap();
        assert_eq!(q.sql, " ORDER BY n.id ASC");
        assert!(push_order(&mut q, &tables::NODE, &[("nope".into(), false)]).is_err());
        let mut q = Query::new(Dialect::Sqlite);
        push_order_with(&mut q, &tables::NODE, &[("link_label", "l.label")], &[("link_label".into(), true)]).unwrap();
        assert_eq!(q.sql, " ORDER BY l.label DESC, n.id ASC");
    }

    #[test]
    fn paging_rules() {
        let p = Params::parse("perpage=2&limit=1").unwrap();
        assert!(check_paging(&p, Some(1)).is_err());
        let p = Params::parse("perpage=2").unwrap();
        assert!(check_paging(&p, None).is_err());
        let w = window(&p, Some(3), 5, 100).unwrap();
        assert_eq!((w.limit, w.offset, w.page), (2, 4, Some((3, 3))));
        assert_eq!(
            window(&p, Some(4), 5, 100).err().unwrap().to_string(),
            "Non existent page requested. The page range is [1 : 3]"
        );
        assert!(window(&Params::parse("limit=401").unwrap(), None, 0, 100).is_err());
        assert_eq!(window(&Params::parse("limit=-1").unwrap(), None, 0, 100).unwrap().limit, 100);
    }
}
