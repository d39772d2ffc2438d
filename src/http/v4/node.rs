//! Everything about one node: its links, contents, repository files and downloads, and the
//! process-specific `/processes/<id>/report` and `/calcjobs/<id>/...` views.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::export::{self, ExportError, NodeFiles, NodeInfo};
use crate::http::error::{ApiError, ApiResult};
use crate::query::tables::{self, Kind};
use crate::storage::db::{Cell, Db, Query};
use crate::storage::repository::{EntryKind, RepoError, RepoTree, Repository};

use super::collection::{check_paging, push_order_with, resolve_uuid, window};
use super::routes::NodePart;
use crate::http::params::{Filter, Params, python_str};
use crate::http::render::{cell_to_json, full_type, json_text};
use crate::http::request::{Ctx, json_response};
use crate::query::filter::rest::{push_filter, push_full_type};
use crate::query::filter::sql::push_condition;

/// The largest file the exporters read into memory.
const EXPORT_FILE_MAX: u64 = 64 << 20;

/// A node's row, as the sub-resources need it.
pub struct NodeRow {
    pub info: NodeInfo,
    pub repository_metadata: String,
}

/// Loads node `pk` with its computer's label.
pub async fn load_node(db: &Db, pk: i64) -> ApiResult<NodeRow> {
    let mut q = db.query();
    q.push("SELECT n.id, ").uuid_text("n.uuid").push(", n.node_type, n.process_type, n.label, n.description, ");
    q.json_text("n.attributes").push(", ").json_text("n.repository_metadata");
    q.push(", c.label FROM db_dbnode n LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE n.id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| ApiError::not_found(format!("no node with id {pk}")))?;
    let mut cells = row.into_iter();
    let mut text = || cells.next().and_then(Cell::into_string);
    let id = text().and_then(|s| s.parse().ok()).unwrap_or(pk);
    let uuid = text().unwrap_or_default();
    let node_type = text().unwrap_or_default();
    let process_type = text();
    let label = text().unwrap_or_default();
    let description = text().unwrap_or_default();
    let attributes_text = text();
    let attribute_keys = attributes_text.as_deref().map(export::ordered_keys).unwrap_or_default();
    let attributes = attributes_text.map(|t| json_text(&t)).filter(Value::is_object).unwrap_or_else(|| json!({}));
    let repository_metadata = text().unwrap_or_else(|| "{}".into());
    let computer_label = text();
    Ok(NodeRow {
        info: NodeInfo {
            id,
            uuid,
            node_type,
            process_type,
            label,
            description,
            attributes,
            attribute_keys,
            computer_label,
        },
        repository_metadata,
    })
}

/// `GET /nodes/<id>/<part>`
pub async fn node_part(
    db: &Db,
    repo: &Repository,
    ctx: &Ctx,
    id: &str,
    part: NodePart,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    let params = Params::parse(&ctx.query)?;
    let links = matches!(part, NodePart::Incoming | NodePart::Outgoing);
    if !links && part != NodePart::Tree && params.has_filters() {
        return Err(ApiError::bad_request("selecting a specific id does not allow to specify filters"));
    }
    let pk = resolve_uuid(db, &tables::NODE, id).await?;
    let id_value = Value::String(id.to_string());
    match part {
        NodePart::Incoming | NodePart::Outgoing => {
            links_list(db, ctx, &params, pk, id_value, part == NodePart::Incoming, page, max_rows).await
        }
        NodePart::Tree => links_tree(db, ctx, &params, pk, id_value, max_rows).await,
        NodePart::Attributes | NodePart::Extras => contents_dict(db, ctx, &params, pk, id_value, part).await,
        NodePart::Comments => comments(db, ctx, pk, id_value, max_rows).await,
        NodePart::DerivedProperties => {
            let node = load_node(db, pk).await?;
            let repo = repo.clone();
            let derived = blocking(move || {
                let files = Files::new(&repo, &node.repository_metadata)?;
                export::derived_properties(&node.info, &files).map_err(export_error)
            })
            .await?;
            let body = ctx.envelope("nodes", Some(id_value), json!({ "derived_properties": derived }));
            Ok(json_response(StatusCode::OK, &body, Some(1), None))
        }
        NodePart::RepoList => {
            let node = load_node(db, pk).await?;
            let dir = filename(&params)?.unwrap_or_default();
            let listing = list_dir(&node.repository_metadata, &dir)?;
            let body = ctx.envelope("nodes", Some(id_value), json!({ "repo_list": listing }));
            Ok(json_response(StatusCode::OK, &body, Some(1), None))
        }
        NodePart::RepoContents => {
            let path = filename(&params)?.filter(|f| !f.is_empty());
            let Some(path) = path else {
                return Err(ApiError::bad_request("filename is not provided"));
            };
            let node = load_node(db, pk).await?;
            repo_contents(repo, ctx, &node, &path, id_value).await
        }
        NodePart::Download => download(db, repo, ctx, &params, pk, id_value).await,
    }
}

fn filename(params: &Params) -> ApiResult<Option<String>> {
    Ok(params.filename.as_ref().map(python_str))
}

/// Runs blocking work (file reads, exporters) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

fn export_error(err: ExportError) -> ApiError {
    match err {
        ExportError::Unsupported(format) => ApiError::not_found(format!(
            "The format {format} is not supported. The available download formats can be queried using the /nodes/download_formats/ endpoint."
        )),
        ExportError::NotAvailable(msg) => ApiError::NotImplemented(msg),
        // The node's data does not fit the format (e.g. XSF of an alloy): the request cannot be
        // served, the reference's message says why.
        ExportError::Invalid(msg) => ApiError::bad_request(msg),
        ExportError::Repo(e) => e.into(),
    }
}

/// The node's files, for the exporters.
struct Files<'a> {
    repo: &'a Repository,
    tree: RepoTree,
}

impl<'a> Files<'a> {
    fn new(repo: &'a Repository, metadata: &str) -> ApiResult<Self> {
        Ok(Self { repo, tree: RepoTree::from_json_str(metadata)? })
    }
}

impl NodeFiles for Files<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
        let key = self.tree.file_key(path)?;
        self.repo.read_object_to_vec(key, EXPORT_FILE_MAX)
    }
}

fn list_dir(metadata: &str, dir: &str) -> ApiResult<Value> {
    let tree = RepoTree::from_json_str(metadata)?;
    let entries = tree.list(dir).map_err(|e| match e {
        RepoError::NotADirectory(_) => ApiError::not_found(format!("{dir} is not a directory in this repository")),
        RepoError::NotFound(_) => ApiError::not_found(format!("object with path `{dir}` does not exist.")),
        other => other.into(),
    })?;
    Ok(Value::Array(
        entries
            .into_iter()
            .map(|(name, kind)| {
                let kind = if kind == EntryKind::File { "FILE" } else { "DIRECTORY" };
                json!({ "name": name, "type": kind })
            })
            .collect(),
    ))
}

async fn repo_contents(repo: &Repository, ctx: &Ctx, node: &NodeRow, path: &str, id: Value) -> ApiResult<Response> {
    let tree = RepoTree::from_json_str(&node.repository_metadata)?;
    let key = match tree.file_key(path) {
        Ok(key) => key.to_string(),
        Err(RepoError::NotFound(_)) => return Err(ApiError::not_found("No such file is present")),
        Err(RepoError::NotAFile(_)) => return Err(ApiError::bad_request(format!("{path} is a directory, not a file"))),
        Err(e) => return Err(e.into()),
    };
    let repo = repo.clone();
    let (size, stream) = blocking(move || Ok(repo.stream_object(&key)?)).await?;
    if size == 0 {
        // The reference answers an empty file with its JSON envelope, not an empty download.
        let body = ctx.envelope("nodes", Some(id), Value::String(String::new()));
        return Ok(json_response(StatusCode::OK, &body, Some(1), None));
    }
    Ok(attachment(Body::from_stream(stream), Some(size), path))
}

/// A file download with the reference's headers.
fn attachment(body: Body, size: Option<u64>, filename: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Some(size) = size {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    // Quotes and control characters cannot appear inside the quoted name.
    let safe: String = filename.chars().map(|c| if c == '"' || c.is_control() { '_' } else { c }).collect();
    let value = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_DISPOSITION, value);
    response
}

async fn download(db: &Db, repo: &Repository, ctx: &Ctx, params: &Params, pk: i64, id: Value) -> ApiResult<Response> {
    let node = load_node(db, pk).await?;
    if !node.info.node_type.starts_with("data.") {
        return Err(ApiError::bad_request("This endpoint is not available for Process nodes."));
    }
    let Some(format) = Params::string(&params.download_format, "download_format")
        .ok()
        .flatten()
        .or_else(|| params.download_format.as_ref().map(python_str))
    else {
        return Err(ApiError::not_found(
            "Please specify the download format. The available download formats can be queried using the /nodes/download_formats/ endpoint.",
        ));
    };
    let as_file = params.download();
    let repo = repo.clone();
    let uuid = node.info.uuid.clone();
    let fmt = format.clone();
    let exported = blocking(move || {
        let files = Files::new(&repo, &node.repository_metadata)?;
        export::export(&node.info, &files, &fmt).map_err(export_error)
    })
    .await?;
    let filename = exported.filename.unwrap_or_else(|| format!("{uuid}.{format}"));
    if as_file {
        let size = exported.content.len() as u64;
        return Ok(attachment(Body::from(exported.content), Some(size), &filename));
    }
    let data = String::from_utf8_lossy(&exported.content).into_owned();
    let body =
        ctx.envelope("nodes", Some(id), json!({"download": {"data": data, "filename": filename, "status": 200}}));
    Ok(json_response(StatusCode::OK, &body, Some(1), None))
}

async fn contents_dict(db: &Db, ctx: &Ctx, params: &Params, pk: i64, id: Value, part: NodePart) -> ApiResult<Response> {
    let (name, column) = if part == NodePart::Attributes { ("attributes", "attributes") } else { ("extras", "extras") };
    let mut q = db.query();
    q.push("SELECT ").json_text(column).push(" FROM db_dbnode WHERE id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| ApiError::not_found(format!("no node with id {pk}")))?;
    let mut dict = match row.into_iter().next().map(|c| cell_to_json(Kind::Json, c)) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    if let Some(keys) = params.key_filter(name) {
        dict.retain(|k, _| keys.contains(k));
    }
    let mut data = Map::new();
    data.insert(name.into(), Value::Object(dict));
    let body = ctx.envelope("nodes", Some(id), Value::Object(data));
    Ok(json_response(StatusCode::OK, &body, Some(1), None))
}

async fn comments(db: &Db, ctx: &Ctx, pk: i64, id: Value, max_rows: i64) -> ApiResult<Response> {
    let mut q = db.query();
    q.push("SELECT ").time_text("c.ctime").push(", c.content, ").time_text("c.mtime");
    q.push(", u.first_name, u.last_name FROM db_dbcomment c JOIN db_dbuser u ON u.id = c.user_id WHERE c.dbnode_id = ");
    q.bind_int(pk).push(" ORDER BY c.id ASC LIMIT ").bind_int(max_rows);
    let rows = db.fetch_all(q).await?;
    let comments: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let mut cells = row.into_iter();
            let created = cell_to_json(Kind::Time, cells.next().unwrap_or(Cell::Null));
            let message = cell_to_json(Kind::Text, cells.next().unwrap_or(Cell::Null));
            let modified = cell_to_json(Kind::Time, cells.next().unwrap_or(Cell::Null));
            let first = cells.next().and_then(Cell::into_string).unwrap_or_default();
            let last = cells.next().and_then(Cell::into_string).unwrap_or_default();
            json!({"created_time": created, "message": message, "modified_time": modified, "user": format!("{first} {last}")})
        })
        .collect();
    let body = ctx.envelope("nodes", Some(id), json!({ "comments": comments }));
    Ok(json_response(StatusCode::OK, &body, Some(1), None))
}

/// Columns of the linked node in link lists, in this order.
const LINK_NODE_COLUMNS: [(&str, Kind); 8] = [
    ("id", Kind::Int),
    ("label", Kind::Text),
    ("node_type", Kind::Text),
    ("process_type", Kind::Text),
    ("ctime", Kind::Time),
    ("mtime", Kind::Time),
    ("uuid", Kind::Uuid),
    ("user_id", Kind::Int),
];

/// Pushes the filters of a link list: link columns by their names, the rest on the node.
fn push_link_filters(q: &mut Query, filters: &[Filter], full_type_filter: Option<&str>) -> ApiResult<()> {
    for filter in filters {
        let link_column = match filter.key.as_str() {
            "link_label" => Some("l.label"),
            "link_type" => Some("l.type"),
            _ => None,
        };
        match link_column {
            Some(column) => {
                for (op, value) in &filter.conditions {
                    q.push(" AND ");
                    push_condition(q, column, Kind::Text, &filter.key, *op, value)?;
                }
            }
            None => push_filter(q, &tables::NODE, filter)?,
        }
    }
    if let Some(ft) = full_type_filter {
        push_full_type(q, "n.node_type", "n.process_type", ft)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn links_list(
    db: &Db,
    ctx: &Ctx,
    params: &Params,
    pk: i64,
    id: Value,
    incoming: bool,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    check_paging(params, page)?;
    let (near, far) = if incoming { ("output_id", "input_id") } else { ("input_id", "output_id") };
    let full_type_filter = Params::string(&params.full_type, "full_type")?;
    let push_where = |q: &mut Query| -> ApiResult<()> {
        q.push(&format!(" FROM db_dblink l JOIN db_dbnode n ON n.id = l.{far} WHERE l.{near} = "));
        q.bind_int(pk);
        push_link_filters(q, &params.filters, full_type_filter.as_deref())
    };
    // Link columns may be ordered on too; everything else is a node column.
    let mut order = db.query();
    push_order_with(
        &mut order,
        &tables::NODE,
        &[("link_label", "l.label"), ("link_type", "l.type")],
        &params.orderby()?,
    )?;
    order.push(", l.id ASC");
    if page.is_none() {
        window(params, None, 0, max_rows)?;
    }

    let mut count = db.query();
    count.push("SELECT count(*)");
    push_where(&mut count)?;
    let total = db.fetch_count_cached(count).await?;
    let window = window(params, page, total, max_rows)?;

    let mut q = db.query();
    q.push("SELECT l.label, l.type");
    for (name, kind) in LINK_NODE_COLUMNS {
        q.push(", ");
        let column = format!("n.{name}");
        match kind {
            Kind::Uuid => q.uuid_text(&column),
            Kind::Time => q.time_text(&column),
            _ => q.push(&column),
        };
    }
    push_where(&mut q)?;
    q.push(&order.sql);
    q.push(" LIMIT ").bind_int(window.limit).push(" OFFSET ").bind_int(window.offset);
    let rows = db.fetch_all(q).await?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let mut cells = row.into_iter();
            let mut object = Map::new();
            object.insert("link_label".into(), cell_to_json(Kind::Text, cells.next().unwrap_or(Cell::Null)));
            object.insert("link_type".into(), cell_to_json(Kind::Text, cells.next().unwrap_or(Cell::Null)));
            for (name, kind) in LINK_NODE_COLUMNS {
                object.insert(name.into(), cell_to_json(kind, cells.next().unwrap_or(Cell::Null)));
            }
            let ft = full_type(&object["node_type"], &object["process_type"]);
            object.insert("full_type".into(), ft);
            Value::Object(object)
        })
        .collect();
    let label = if incoming { "incoming" } else { "outgoing" };
    let mut data = Map::new();
    data.insert(label.into(), Value::Array(items));
    let body = ctx.envelope("nodes", Some(id), Value::Object(data));
    let link = window.page.map(|(page, last)| ctx.page_links(page, last));
    Ok(json_response(StatusCode::OK, &body, Some(total), link))
}

/// One neighbour (or the node itself) in `/links/tree`.
fn tree_item(cells: &mut impl Iterator<Item = Cell>, with_link: bool) -> Map<String, Value> {
    let mut next = || cells.next().unwrap_or(Cell::Null);
    let mut object = Map::new();
    if with_link {
        object.insert("link_label".into(), cell_to_json(Kind::Text, next()));
        object.insert("link_type".into(), cell_to_json(Kind::Text, next()));
    }
    let id = next().as_i64().unwrap_or_default();
    let uuid = next().into_string().unwrap_or_default();
    let node_type = next().into_string().unwrap_or_default();
    let process_type = next().into_string();
    let label = next().into_string().unwrap_or_default();
    let ctime = cell_to_json(Kind::Time, next());
    let mtime = cell_to_json(Kind::Time, next());
    let attributes = next().into_string().map(|t| json_text(&t)).unwrap_or_else(|| json!({}));
    let info = NodeInfo {
        id,
        uuid: uuid.clone(),
        node_type: node_type.clone(),
        process_type,
        label: label.clone(),
        description: String::new(),
        attributes,
        attribute_keys: Vec::new(),
        computer_label: next().into_string(),
    };
    object.insert("ctime".into(), ctime);
    object.insert("description".into(), Value::String(export::description(&info)));
    object.insert("id".into(), Value::from(id));
    object.insert("mtime".into(), mtime);
    object.insert("node_label".into(), Value::String(label));
    object.insert("node_type".into(), Value::String(node_type));
    object.insert("uuid".into(), Value::String(uuid));
    object
}

fn push_tree_columns(q: &mut Query) {
    q.push("n.id, ").uuid_text("n.uuid").push(", n.node_type, n.process_type, n.label, ");
    q.time_text("n.ctime").push(", ").time_text("n.mtime").push(", ").json_text("n.attributes");
    q.push(", c.label");
}

async fn links_tree(db: &Db, ctx: &Ctx, params: &Params, pk: i64, id: Value, max_rows: i64) -> ApiResult<Response> {
    let in_limit = params.in_limit().map_err(|_| ApiError::bad_request("in_limit must be an integer"))?;
    let out_limit = params.out_limit().map_err(|_| ApiError::bad_request("out_limit must be an integer"))?;
    let mut q = db.query();
    q.push("SELECT ");
    push_tree_columns(&mut q);
    q.push(" FROM db_dbnode n LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE n.id = ").bind_int(pk);
    let row = db.fetch_optional(q).await?.ok_or_else(|| ApiError::not_found(format!("no node with id {pk}")))?;
    let mut node = tree_item(&mut row.into_iter(), false);

    let mut metadata = Map::new();
    for (incoming, limit) in [(true, in_limit), (false, out_limit)] {
        let (near, far, label) =
            if incoming { ("output_id", "input_id", "incoming") } else { ("input_id", "output_id", "outgoing") };
        let mut count = db.query();
        count.push(&format!("SELECT count(*) FROM db_dblink l WHERE l.{near} = ")).bind_int(pk);
        let total = db.fetch_count(count).await?;
        let mut q = db.query();
        q.push("SELECT l.label, l.type, ");
        push_tree_columns(&mut q);
        q.push(&format!(
            " FROM db_dblink l JOIN db_dbnode n ON n.id = l.{far} LEFT JOIN db_dbcomputer c ON c.id = n.dbcomputer_id WHERE l.{near} = "
        ));
        q.bind_int(pk).push(" ORDER BY n.id ASC, l.id ASC LIMIT ");
        // A negative limit is no limit (as in the list endpoints); the link count bounds it.
        q.bind_int(limit.filter(|l| *l >= 0).unwrap_or(total).min(max_rows));
        let rows = db.fetch_all(q).await?;
        let sent = rows.len();
        let items: Vec<Value> = rows.into_iter().map(|r| Value::Object(tree_item(&mut r.into_iter(), true))).collect();
        node.insert(label.into(), Value::Array(items));
        metadata.insert(format!("sent_no_of_{label}s"), Value::from(sent));
        metadata.insert(format!("total_no_of_{label}s"), Value::from(total));
    }
    let data = json!({ "metadata": [metadata], "nodes": [node] });
    let body = ctx.envelope("nodes", Some(id), data);
    Ok(json_response(StatusCode::OK, &body, Some(0), None))
}

/// Resolves the identifier of `/processes/<id>` and `/calcjobs/<id>`: digits are a primary
/// key, anything else a UUID prefix. The node must be of `required` (a node_type prefix).
async fn load_process(db: &Db, id: &str, required: &str, class: &str) -> ApiResult<NodeRow> {
    let pk = if id.bytes().all(|b| b.is_ascii_digit()) {
        id.parse::<i64>().map_err(|_| ApiError::not_found(format!("no node with id {id}")))?
    } else {
        resolve_uuid(db, &tables::NODE, id).await?
    };
    let node = load_node(db, pk).await?;
    if !node.info.node_type.starts_with(required) {
        return Err(ApiError::not_found(format!("node {id} is not of the required type <class '{class}'>")));
    }
    Ok(node)
}

/// `GET /processes/<id>/report`: the node's log records.
pub async fn process_report(db: &Db, ctx: &Ctx, id: &str, max_rows: i64) -> ApiResult<Response> {
    // Parsed for its errors only: the report takes no parameters.
    Params::parse(&ctx.query)?;
    let node = load_process(db, id, "process.", "aiida.orm.nodes.process.process.ProcessNode").await?;
    let mut q = db.query();
    q.push("SELECT dbnode_id, levelname, loggername, message, ").time_text("time");
    q.push(" FROM db_dblog WHERE dbnode_id = ")
        .bind_int(node.info.id)
        .push(" ORDER BY id ASC LIMIT ")
        .bind_int(max_rows);
    let logs: Vec<Value> = db
        .fetch_all(q)
        .await?
        .into_iter()
        .map(|row| {
            let mut cells = row.into_iter();
            let mut next = || cells.next().unwrap_or(Cell::Null);
            json!({
                "dbnode_id": cell_to_json(Kind::Int, next()),
                "levelname": cell_to_json(Kind::Text, next()),
                "loggername": cell_to_json(Kind::Text, next()),
                "message": cell_to_json(Kind::Text, next()),
                "time": cell_to_json(Kind::Time, next()),
            })
        })
        .collect();
    let body = ctx.envelope("processes", Some(Value::String(id.to_string())), json!({ "logs": logs }));
    Ok(json_response(StatusCode::OK, &body, Some(1), None))
}

/// `GET /calcjobs/<id>/input_files` (the calcjob's own files) and `/output_files` (those of
/// its `retrieved` output).
pub async fn calcjob_files(
    db: &Db,
    ctx: &Ctx,
    raw_query: Option<&str>,
    id: &str,
    outputs: bool,
) -> ApiResult<Response> {
    Params::parse(&ctx.query)?;
    let node =
        load_process(db, id, "process.calculation.calcjob.", "aiida.orm.nodes.process.calculation.calcjob.CalcJobNode")
            .await?;
    // The reference reads `filename` form-decoded from the raw query, quotes included.
    let dir =
        raw_query.and_then(|q| form_value(q, "filename")).map(|d| d.trim_matches('"').to_string()).unwrap_or_default();
    let id_value = Value::String(id.to_string());
    let metadata = if outputs {
        let mut q = db.query();
        q.push("SELECT ").json_text("n.repository_metadata");
        q.push(" FROM db_dblink l JOIN db_dbnode n ON n.id = l.output_id WHERE l.input_id = ");
        q.bind_int(node.info.id).push(" AND l.label = 'retrieved' AND l.type = 'create' ORDER BY n.id LIMIT 1");
        match db.fetch_optional(q).await? {
            Some(row) => row.into_iter().next().and_then(Cell::into_string).unwrap_or_else(|| "{}".into()),
            None => {
                let data = json!({"data": "This node does not have retrieved folder", "status": 200});
                let body = ctx.envelope("calcjobs", Some(id_value), data);
                return Ok(json_response(StatusCode::OK, &body, Some(1), None));
            }
        }
    } else {
        node.repository_metadata
    };
    let listing = list_dir(&metadata, &dir)?;
    let body = ctx.envelope("calcjobs", Some(id_value), listing);
    Ok(json_response(StatusCode::OK, &body, Some(1), None))
}

/// The form-decoded value of `key` in a raw query string (`+` is a space here).
fn form_value(raw: &str, key: &str) -> Option<String> {
    raw.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode =
            |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        (decode(k) == key).then(|| decode(v))
    })
}

impl From<ExportError> for ApiError {
    fn from(err: ExportError) -> Self {
        export_error(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values() {
        assert_eq!(form_value("a=1&filename=x+y%2Fz", "filename"), Some("x y/z".into()));
        assert_eq!(form_value("a=1", "filename"), None);
    }
}
