//! Lists and single objects of the v2 resources, their schema, `/<res>/statistics` and
//! `/<res>/types`. The queries are the query layer's (`query::lists`, `query::stats`), shared
//! with v4: the same request gives the same rows in the same order.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::http::error::{ApiError, ApiResult};
use crate::http::querystring::{self, Op, Value as QValue};
use crate::http::render::{int_json, text_json, time_json};
use crate::http::request::Ctx;
use crate::http::v4::collection::window;
use crate::http::v4::routes::parse_user_id;
use crate::query::lists::{self, Collection, EntityList, EntityRow, ListSpec, NodeRow, Unfiltered};
use crate::query::node_classes::{InClass, process_states};
use crate::query::{QueryError, stats};
use crate::storage::db::Db;

use super::params::{Key, Target, V2Filter, V2Params, ValueType};
use super::routes::Resource;
use super::{respond, v2_error};

pub fn collection_of(resource: Resource) -> Collection {
    match resource {
        Resource::Computers => Collection::Computers,
        Resource::Users => Collection::Users,
        Resource::Groups => Collection::Groups,
        _ => Collection::Nodes,
    }
}

/// A node row as v2 shows it: `type` is today's `node_type`, `state` the process state (null
/// for nodes that are not processes).
pub fn node_row(row: NodeRow, state: Option<&String>) -> Value {
    json!({
        "ctime": time_json(row.ctime),
        "id": row.id,
        "label": text_json(row.label),
        "mtime": time_json(row.mtime),
        "state": state.map_or(Value::Null, |s| Value::String(s.clone())),
        "type": text_json(row.node_type),
        "uuid": text_json(row.uuid),
    })
}

/// Rows of computers, users and groups with v2's field names; fields today's schema does not
/// have are null.
fn entity_row(row: EntityRow) -> Value {
    match row {
        EntityRow::Node(node) => node_row(node, None),
        EntityRow::Computer(c) => json!({
            "description": text_json(c.description),
            "enabled": null,
            "hostname": text_json(c.hostname),
            "id": c.id,
            "name": text_json(c.label),
            "scheduler_type": text_json(c.scheduler_type),
            "transport_params": null,
            "transport_type": text_json(c.transport_type),
            "uuid": text_json(c.uuid),
        }),
        EntityRow::User(u) => json!({
            "date_joined": null,
            "first_name": text_json(u.first_name),
            "id": u.id,
            "institution": text_json(u.institution),
            "last_name": text_json(u.last_name),
        }),
        EntityRow::Group(g) => json!({
            "description": text_json(g.description),
            "id": g.id,
            "name": text_json(g.label),
            "type": text_json(g.type_string),
            "user_id": int_json(g.user_id),
            "uuid": text_json(g.uuid),
        }),
    }
}

/// Node rows with their process states (one more query for the whole page).
pub async fn node_rows(db: &Db, rows: Vec<NodeRow>) -> ApiResult<Vec<Value>> {
    let process_pks: Vec<i64> = rows
        .iter()
        .filter(|r| r.node_type.as_deref().is_some_and(|t| t.starts_with("process.")))
        .map(|r| r.id)
        .collect();
    let states = process_states(db, &process_pks).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let state = states.get(&row.id);
            node_row(row, state)
        })
        .collect())
}

/// Resolves the identifier segment to the primary key of an object of `resource`: 404 when
/// nothing (of the resource's class) has it, 400 when a UUID prefix is ambiguous.
pub async fn resolve(db: &Db, resource: Resource, id: &str) -> ApiResult<i64> {
    let pk = if resource == Resource::Users {
        let pk = parse_user_id(id)
            .ok_or_else(|| ApiError::bad_request(format!("parameter id has to be an integer, not '{id}'")))?;
        lists::resolve_user(db, pk).await?
    } else {
        match lists::resolve_uuid(db, collection_of(resource).entity(), id).await {
            Ok(pk) => pk,
            Err(QueryError::NotFound(msg)) if msg.starts_with("More than one") => {
                // Ambiguous among all nodes, perhaps not among those of the resource's class.
                if !resource.class().0.is_empty() {
                    return resolve_in_class(db, resource, id).await;
                }
                return Err(ApiError::bad_request(msg));
            }
            Err(QueryError::NotFound(_)) => return Err(not_found(resource, id)),
            Err(other) => return Err(other.into()),
        }
    };
    if resource.is_node() && !resource.class().0.is_empty() {
        let class = InClass { class: resource.class(), conditions: &Unfiltered };
        let spec = ListSpec {
            collection: Collection::Nodes,
            pk: Some(pk),
            conditions: &class,
            orderby: &[],
            attributes: false,
            extras: false,
        };
        if EntityList::new(db.dialect(), spec)?.count(db).await? == 0 {
            return Err(not_found(resource, id));
        }
    }
    Ok(pk)
}

/// The node of `resource`'s class whose uuid starts with `id` (a checked uuid prefix): the
/// uuids between the prefix filled with `0` and with `f`, so that an index serves it.
async fn resolve_in_class(db: &Db, resource: Resource, id: &str) -> ApiResult<i64> {
    let prefix = id.to_ascii_lowercase();
    let bound = |fill: char| -> String {
        (0..36)
            .map(|i| match prefix.chars().nth(i) {
                Some(c) => c,
                None if matches!(i, 8 | 13 | 18 | 23) => '-',
                None => fill,
            })
            .collect()
    };
    let key = Key { name: "uuid", value: ValueType::String, target: Target::Column("uuid") };
    let range =
        [V2Filter { key, conditions: vec![(Op::Ge, QValue::Str(bound('0'))), (Op::Le, QValue::Str(bound('f')))] }];
    let filters = super::params::conditions(&range);
    let conditions = InClass { class: resource.class(), conditions: &filters };
    let spec = ListSpec {
        collection: Collection::Nodes,
        pk: None,
        conditions: &conditions,
        orderby: &[],
        attributes: false,
        extras: false,
    };
    let rows = EntityList::new(db.dialect(), spec)?.rows(db, 2, 0).await?;
    match rows.as_slice() {
        [EntityRow::Node(node)] => Ok(node.id),
        [] => Err(not_found(resource, id)),
        _ => Err(ApiError::bad_request("More than one node found. Provide longer starting pattern for id.")),
    }
}

fn not_found(resource: Resource, id: &str) -> ApiError {
    ApiError::not_found(format!(
        "either no object's id starts with '{id}' or the corresponding object is not of type aiida.orm.{}",
        resource.orm_class()
    ))
}

/// The envelope of v2: v4's, with the object's primary key as `pk` (null for lists) and, for
/// computers, users and groups, the query string as received (the 0.x resources echoed it
/// undecoded).
pub fn envelope(ctx: &Ctx, resource: &str, id: Option<&str>, pk: Option<i64>, data: Value) -> Value {
    let id_value = match (id, resource) {
        (Some(_), "users") => int_json(pk),
        (Some(id), _) => Value::String(id.to_string()),
        (None, _) => Value::Null,
    };
    let mut body = ctx.envelope(resource, Some(id_value), data);
    if let Value::Object(map) = &mut body {
        map.insert("pk".into(), int_json(pk));
        if matches!(resource, "computers" | "users" | "groups") {
            map.insert("query_string".into(), Value::String(ctx.raw_query.clone().unwrap_or_default()));
        }
    }
    body
}

/// `GET /<res>[/page[/<n>]]` and `GET /<res>/<id>`.
pub async fn list(
    db: &Db,
    ctx: &Ctx,
    resource: Resource,
    id: Option<&str>,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    let params = V2Params::parse(&ctx.query, Some(resource))?;
    params.only(&["limit", "offset", "perpage", "orderby"], &format!("/{}", resource.name()))?;
    params.check_paging(page)?;
    let pk = match id {
        Some(id) => {
            if !params.filters.is_empty() {
                return Err(ApiError::bad_request("selecting a specific id does not allow to specify filters"));
            }
            Some(resolve(db, resource, id).await?)
        }
        None => None,
    };
    let filters = super::params::conditions(&params.filters);
    let conditions = InClass { class: resource.class(), conditions: &filters };
    let orderby = params.orderby(resource)?;
    let spec = ListSpec {
        collection: collection_of(resource),
        pk,
        conditions: &conditions,
        orderby: &orderby,
        attributes: false,
        extras: false,
    };
    let list = EntityList::new(db.dialect(), spec)?;
    if page.is_none() {
        window(&params.shared, None, 0, max_rows)?;
    }
    let total = list.count(db).await?;
    let window = window(&params.shared, page, total, max_rows).map_err(v2_error)?;
    let rows = list.rows(db, window.limit, window.offset).await?;

    let items = if resource.is_node() {
        let nodes = rows.into_iter().filter_map(|r| if let EntityRow::Node(n) = r { Some(n) } else { None }).collect();
        node_rows(db, nodes).await?
    } else {
        rows.into_iter().map(entity_row).collect()
    };
    let mut data = Map::new();
    data.insert(resource.name().into(), Value::Array(items));
    let body = envelope(ctx, resource.name(), id, pk, Value::Object(data));
    let link = window.page.map(|(page, last)| ctx.page_links(page, last));
    Ok(respond(&body, Some(total), link))
}

/// One field of a schema: (name, display name, help text, type, shown by default).
type Field = (&'static str, &'static str, &'static str, &'static str, bool);

const NODE_FIELDS: &[Field] = &[
    ("id", "Id", "Id of the object", "int", true),
    ("label", "Label", "User-assigned label", "str", false),
    ("type", "Type", "Code type (today's node_type)", "str", true),
    ("state", "State", "Process state of process nodes (null for data)", "str", true),
    ("ctime", "Creation time", "Creation time of the node", "datetime.datetime", true),
    ("mtime", "Last Modification time", "Last modification time", "datetime.datetime", true),
    ("uuid", "Unique ID", "Universally Unique Identifier", "unicode", false),
];
const COMPUTER_FIELDS: &[Field] = &[
    ("id", "Id", "Id of the object", "int", true),
    ("name", "Name", "Name of the object (today's label)", "str", true),
    ("hostname", "Host", "Name of the host", "str", true),
    ("description", "Description", "Short description of the computer", "str", false),
    ("enabled", "Enabled", "Not stored today (per-user authinfo): always null", "bool", false),
    ("scheduler_type", "Scheduler", "Scheduler type", "str", true),
    ("transport_type", "Transport type", "Transport Type", "str", false),
    ("transport_params", "Transport Parameters", "Not stored today: always null", "str", false),
    ("uuid", "Unique ID", "Universally Unique Identifier", "unicode", false),
];
const USER_FIELDS: &[Field] = &[
    ("id", "Id", "Id of the object", "int", true),
    ("first_name", "First Name", "First Name of the user", "str", true),
    ("last_name", "Last Name", "Last Name of the user", "str", true),
    ("institution", "Institution", "Affiliation of the user", "str", true),
    ("date_joined", "Date joined", "Not stored today: always null", "datetime.datetime", false),
];
const GROUP_FIELDS: &[Field] = &[
    ("id", "Id", "Id of the object", "int", true),
    ("name", "Name", "Name of the object (today's label)", "str", true),
    ("type", "Type", "Type of the group (today's type_string)", "str", true),
    ("description", "Description", "Short description of the group", "str", false),
    ("user_id", "Id of creator", "Id of the user that created the node", "int", true),
    ("uuid", "Unique ID", "Universally Unique Identifier", "unicode", false),
];

/// `GET /<res>/schema`: `{fields: {name: {...}}, ordering: [names]}` of the fields served.
pub fn schema(ctx: &Ctx, resource: Resource) -> ApiResult<Response> {
    if !ctx.query.is_empty() {
        return Err(ApiError::bad_request("schema requests do not allow specifying a query string"));
    }
    let fields = match resource {
        Resource::Computers => COMPUTER_FIELDS,
        Resource::Users => USER_FIELDS,
        Resource::Groups => GROUP_FIELDS,
        _ => NODE_FIELDS,
    };
    let mut map = Map::new();
    for (name, display, help, kind, shown) in fields {
        let mut field = json!({
            "display_name": display, "help_text": help, "is_display": shown, "is_foreign_key": false, "type": kind,
        });
        if *name == "user_id" {
            field["is_foreign_key"] = Value::Bool(true);
            field["related_column"] = Value::from("id");
            field["related_resource"] = Value::from("users");
        }
        map.insert(name.to_string(), field);
    }
    let ordering: Vec<&str> = fields.iter().map(|f| f.0).collect();
    let body = envelope(ctx, resource.name(), None, None, json!({ "fields": map, "ordering": ordering }));
    Ok(respond(&body, Some(1), None))
}

/// The `user=<id>` of `/nodes/statistics`, the only key it takes.
fn statistics_user(query: &str) -> ApiResult<Option<i64>> {
    let fields = querystring::parse(query).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut user = None;
    for field in fields {
        match (field.key.as_str(), field.op, field.value) {
            ("user", Op::Eq, QValue::Int(pk)) if user.is_none() => user = Some(pk),
            _ => return Err(ApiError::bad_request("statistics takes only the filter user=<id of a user>")),
        }
    }
    Ok(user)
}

/// `GET /<res>/statistics[?user=<id>]`: `{total, types, ctime_by_day}` of the nodes of the
/// resource's class, keyed by type.
pub async fn statistics(db: &Db, ctx: &Ctx, resource: Resource) -> ApiResult<Response> {
    let user = statistics_user(&ctx.query)?;
    let stats = match resource {
        Resource::Nodes => stats::statistics(db, user).await?,
        _ => stats::class_statistics(db, user, resource.class()).await?,
    };
    let counts =
        |pairs: Vec<(String, i64)>| Value::Object(pairs.into_iter().map(|(k, n)| (k, Value::from(n))).collect());
    let data = json!({
        "ctime_by_day": counts(stats.ctime_by_day),
        "total": stats.total,
        "types": counts(stats.types),
    });
    let body = envelope(ctx, resource.name(), None, None, data);
    Ok(respond(&body, Some(0), None))
}

/// `GET /<res>/types`: the distinct node types of the resource's class, by first component.
/// `X-Total-Count: 0`, as aiida-core 0.12 sent it (and for `/statistics`).
pub async fn types(db: &Db, ctx: &Ctx, resource: Resource) -> ApiResult<Response> {
    if !ctx.query.is_empty() {
        return Err(ApiError::bad_request("types requests do not allow specifying a query string"));
    }
    let class = resource.class();
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for count in stats::full_type_counts(db, None).await? {
        if !class.contains(&count.node_type) {
            continue;
        }
        let family = count.node_type.split('.').next().unwrap_or("").to_string();
        let list = families.entry(family).or_default();
        if !list.contains(&count.node_type) {
            list.push(count.node_type);
        }
    }
    let data: Map<String, Value> = families
        .into_iter()
        .map(|(family, mut types)| {
            types.sort();
            (family, Value::from(types))
        })
        .collect();
    let body = envelope(ctx, resource.name(), None, None, Value::Object(data));
    Ok(respond(&body, Some(0), None))
}
