//! Lists and single entities of nodes, computers, users and groups: parameters, paging and
//! the rows' JSON. The queries are `query::lists`.

use axum::response::Response;
use serde_json::{Map, Value};

use crate::http::error::{ApiError, ApiResult};
use crate::query::filter::rest::RequestConditions;
use crate::query::lists::{self, Collection, EntityList, EntityRow, ListSpec};
use crate::storage::db::Db;

use super::routes::{Resource, parse_user_id};
use crate::http::params::{LIMIT_MAX, PERPAGE_DEFAULT, Params};
use crate::http::render::{entity_row, full_type, json_dict, node_row};
use crate::http::request::Ctx;

pub fn collection_of(resource: Resource) -> Collection {
    match resource {
        Resource::Nodes | Resource::Processes | Resource::Calcjobs => Collection::Nodes,
        Resource::Computers => Collection::Computers,
        Resource::Users => Collection::Users,
        Resource::Groups => Collection::Groups,
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

/// Resolves the identifier segment of `resource` to a primary key.
pub async fn resolve_id(db: &Db, resource: Resource, id: &str) -> ApiResult<i64> {
    if resource != Resource::Users {
        return Ok(lists::resolve_uuid(db, collection_of(resource).entity(), id).await?);
    }
    let pk = parse_user_id(id).ok_or_else(|| ApiError::not_found(format!("'{id}' is not a user id")))?;
    Ok(lists::resolve_user(db, pk).await?)
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
    let collection = collection_of(resource);
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
    let conditions = RequestConditions { filters: &params.filters, full_type: full_type_filter.as_deref() };
    let orderby = params.orderby()?;
    // Validate ordering and the limit before touching the database.
    let list = EntityList::new(
        db.dialect(),
        ListSpec { collection, pk, conditions: &conditions, orderby: &orderby, attributes, extras },
    )?;
    if page.is_none() {
        window(&params, None, 0, max_rows)?;
    }

    let total = list.count(db).await?;
    let window = window(&params, page, total, max_rows)?;
    let rows = list.rows(db, window.limit, window.offset).await?;

    let attribute_keys = params.key_filter("attributes").filter(|_| attributes);
    let extra_keys = params.key_filter("extras").filter(|_| extras);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let object = match row {
            EntityRow::Node(mut node) if is_node => {
                let full_type = full_type(node.node_type.as_deref(), node.process_type.as_deref());
                let (node_attributes, node_extras) = (node.attributes.take(), node.extras.take());
                let mut object = node_row(node);
                object.insert("full_type".into(), full_type);
                if attributes {
                    object
                        .insert("attributes".into(), pick_keys(node_attributes.as_deref(), attribute_keys.as_deref()));
                }
                if extras {
                    object.insert("extras".into(), pick_keys(node_extras.as_deref(), extra_keys.as_deref()));
                }
                object
            }
            row => entity_row(row),
        };
        items.push(Value::Object(object));
    }

    let mut data = Map::new();
    data.insert(resource.name().into(), Value::Array(items));
    let link = window.page.map(|(page, last)| ctx.page_links(page, last));
    Ok(ctx.answer(
        resource.name(),
        Some(&id.map(Value::from).unwrap_or(Value::Null)),
        &Value::Object(data),
        Some(total),
        link,
    ))
}

/// The attributes/extras of a row: the whole dict, or only the requested keys (`null` for a
/// missing one). Keys are picked here rather than in SQL, so any key text works on both
/// databases and booleans stay booleans.
fn pick_keys(json: Option<&str>, keys: Option<&[String]>) -> Value {
    let dict = json_dict(json);
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
