//! Everything about one node: its links, contents, repository files and downloads, and the
//! process-specific `/processes/<id>/report` and `/calcjobs/<id>/...` views. The queries are
//! `query::nodes`.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use futures_util::TryStreamExt;
use serde_json::{Map, Value, json};

use crate::export::{self, ExportError, NodeFiles, NodeInfo};
use crate::http::error::{ApiError, ApiResult};
use crate::http::request::attachment;
use crate::model::node_class;
use crate::query::lists::resolve_uuid;
use crate::query::nodes::{self, Direction, LinkList, NodeDict};
use crate::query::tables;
use crate::storage::db::Db;
use crate::storage::ratelog;
use crate::storage::repository::{EntryKind, RepoError, RepoTree, Repository};

use super::collection::{check_paging, window};
use super::routes::NodePart;
use crate::http::params::{Params, python_str};
use crate::http::render::{comment, json_dict, json_text, link_row, log_record, tree_node};
use crate::http::request::{Ctx, json_response};
use crate::query::filter::rest::RequestConditions;

/// The largest file the exporters read into memory.
const EXPORT_FILE_MAX: u64 = 64 << 20;

/// A node's row, as the sub-resources need it.
pub struct LoadedNode {
    pub info: NodeInfo,
    pub repository_metadata: String,
}

/// Loads node `pk` with its computer's label.
pub async fn load_node(db: &Db, pk: i64) -> ApiResult<LoadedNode> {
    let node = nodes::node_detail(db, pk).await?;
    let attribute_keys = node.attributes.as_deref().map(export::ordered_keys).unwrap_or_default();
    let attributes = node.attributes.as_deref().map(json_text).filter(Value::is_object).unwrap_or_else(|| json!({}));
    Ok(LoadedNode {
        info: NodeInfo {
            id: node.id,
            uuid: node.uuid,
            node_type: node.node_type,
            process_type: node.process_type,
            label: node.label,
            description: node.description,
            attributes,
            attribute_keys,
            computer_label: node.computer_label,
        },
        repository_metadata: node.repository_metadata,
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
            let direction = if part == NodePart::Incoming { Direction::Incoming } else { Direction::Outgoing };
            links_list(db, ctx, &params, pk, id_value, direction, page, max_rows).await
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
            Ok(ctx.answer("nodes", Some(&id_value), &json!({ "derived_properties": derived }), Some(1), None))
        }
        NodePart::RepoList => {
            let node = load_node(db, pk).await?;
            let dir = filename(&params)?.unwrap_or_default();
            let listing = list_dir(&node.repository_metadata, &dir)?;
            Ok(ctx.answer("nodes", Some(&id_value), &json!({ "repo_list": listing }), Some(1), None))
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

async fn repo_contents(repo: &Repository, ctx: &Ctx, node: &LoadedNode, path: &str, id: Value) -> ApiResult<Response> {
    let tree = RepoTree::from_json_str(&node.repository_metadata)?;
    let key = match tree.file_key(path) {
        Ok(key) => key.to_string(),
        Err(RepoError::NotFound(_)) => return Err(ApiError::not_found("No such file is present")),
        Err(RepoError::NotAFile(_)) => return Err(ApiError::bad_request(format!("{path} is a directory, not a file"))),
        Err(e) => return Err(e.into()),
    };
    let repo = repo.clone();
    let object = key.clone();
    let (size, stream) = match blocking(move || Ok(repo.stream_object(&object))).await? {
        Ok(found) => found,
        Err(err @ (RepoError::Corrupt(_) | RepoError::Io(_))) => return Ok(damaged_file(node, path, &key, &err)),
        Err(err) => return Err(err.into()),
    };
    if size == 0 {
        // The reference answers an empty file with its JSON envelope, not an empty download.
        return Ok(ctx.answer("nodes", Some(&id), &Value::String(String::new()), Some(1), None));
    }
    // Damage found only after the headers went out: the error aborts the body, so the client
    // sees a connection closed before `Content-Length` bytes, never a complete-looking file.
    let uuid = node.info.uuid.clone();
    let file = path.to_string();
    let stream = stream.inspect_err(move |err| {
        ratelog::error(&format!("stream {key} {err}"), |repeats| {
            tracing::error!(
                node = %uuid, file = %file, object = %key, error = %err, repeats,
                "repository object damaged: its download was aborted after the headers were sent"
            );
        });
    });
    Ok(attachment(Body::from_stream(stream), Some(size), path))
}

/// The answer for a file whose repository object is damaged (or unreadable): a 500 with a JSON
/// message naming the object (the details, which may hold paths, go to the log, once per
/// interval for the same damage). It is not the request's fault, and retrying will not help.
fn damaged_file(node: &LoadedNode, path: &str, key: &str, err: &RepoError) -> Response {
    let uuid = &node.info.uuid;
    ratelog::error(&format!("damaged {err}"), |repeats| {
        tracing::error!(node = %uuid, file = %path, object = %key, error = %err, repeats, "repository object damaged");
    });
    let message = format!(
        "The file '{path}' of node {uuid} cannot be read: its repository object {key} is damaged or unreadable. \
         The details are in the server log."
    );
    json_response(StatusCode::INTERNAL_SERVER_ERROR, &json!({ "message": message }), None, None)
}

async fn download(db: &Db, repo: &Repository, ctx: &Ctx, params: &Params, pk: i64, id: Value) -> ApiResult<Response> {
    let node = load_node(db, pk).await?;
    if !node_class::is_data(&node.info.node_type) {
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
    Ok(ctx.answer(
        "nodes",
        Some(&id),
        &json!({"download": {"data": data, "filename": filename, "status": 200}}),
        Some(1),
        None,
    ))
}

async fn contents_dict(db: &Db, ctx: &Ctx, params: &Params, pk: i64, id: Value, part: NodePart) -> ApiResult<Response> {
    let (name, dict) =
        if part == NodePart::Attributes { ("attributes", NodeDict::Attributes) } else { ("extras", NodeDict::Extras) };
    let mut dict = json_dict(nodes::node_dict(db, pk, dict).await?.as_deref());
    if let Some(keys) = params.key_filter(name) {
        dict.retain(|k, _| keys.contains(k));
    }
    let mut data = Map::new();
    data.insert(name.into(), Value::Object(dict));
    Ok(ctx.answer("nodes", Some(&id), &Value::Object(data), Some(1), None))
}

async fn comments(db: &Db, ctx: &Ctx, pk: i64, id: Value, max_rows: i64) -> ApiResult<Response> {
    let comments: Vec<Value> = nodes::comments(db, pk, max_rows).await?.into_iter().map(comment).collect();
    Ok(ctx.answer("nodes", Some(&id), &json!({ "comments": comments }), Some(1), None))
}

#[allow(clippy::too_many_arguments)]
async fn links_list(
    db: &Db,
    ctx: &Ctx,
    params: &Params,
    pk: i64,
    id: Value,
    direction: Direction,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    check_paging(params, page)?;
    let full_type_filter = Params::string(&params.full_type, "full_type")?;
    let conditions = RequestConditions { filters: &params.filters, full_type: full_type_filter.as_deref() };
    // Link columns may be ordered on too; everything else is a node column.
    let list = LinkList::new(db.dialect(), pk, direction, &conditions, &params.orderby()?)?;
    if page.is_none() {
        window(params, None, 0, max_rows)?;
    }

    let total = list.count(db).await?;
    let window = window(params, page, total, max_rows)?;
    let rows = list.rows(db, window.limit, window.offset).await?;
    let items: Vec<Value> = rows.into_iter().map(|row| Value::Object(link_row(row))).collect();
    let label = if direction == Direction::Incoming { "incoming" } else { "outgoing" };
    let mut data = Map::new();
    data.insert(label.into(), Value::Array(items));
    let link = window.page.map(|(page, last)| ctx.page_links(page, last));
    Ok(ctx.answer("nodes", Some(&id), &Value::Object(data), Some(total), link))
}

async fn links_tree(db: &Db, ctx: &Ctx, params: &Params, pk: i64, id: Value, max_rows: i64) -> ApiResult<Response> {
    let in_limit = params.in_limit().map_err(|_| ApiError::bad_request("in_limit must be an integer"))?;
    let out_limit = params.out_limit().map_err(|_| ApiError::bad_request("out_limit must be an integer"))?;
    let mut node = tree_node(nodes::tree_node(db, pk).await?, None);

    let mut metadata = Map::new();
    for (direction, limit) in [(Direction::Incoming, in_limit), (Direction::Outgoing, out_limit)] {
        let label = if direction == Direction::Incoming { "incoming" } else { "outgoing" };
        let total = nodes::link_count(db, pk, direction).await?;
        // A negative limit is no limit (as in the list endpoints); the link count bounds it.
        let limit = limit.filter(|l| *l >= 0).unwrap_or(total).min(max_rows);
        let links = nodes::tree_links(db, pk, direction, limit).await?;
        let sent = links.len();
        let items: Vec<Value> = links
            .into_iter()
            .map(|link| Value::Object(tree_node(link.node, Some((link.link_label, link.link_type)))))
            .collect();
        node.insert(label.into(), Value::Array(items));
        metadata.insert(format!("sent_no_of_{label}s"), Value::from(sent));
        metadata.insert(format!("total_no_of_{label}s"), Value::from(total));
    }
    let data = json!({ "metadata": [metadata], "nodes": [node] });
    Ok(ctx.answer("nodes", Some(&id), &data, Some(0), None))
}

/// Resolves the identifier of `/processes/<id>` and `/calcjobs/<id>`: digits are a primary
/// key, anything else a UUID prefix. The node must be of `required` (a node_type prefix).
async fn load_process(db: &Db, id: &str, required: &str, class: &str) -> ApiResult<LoadedNode> {
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
    let logs: Vec<Value> = nodes::process_logs(db, node.info.id, max_rows).await?.into_iter().map(log_record).collect();
    Ok(ctx.answer("processes", Some(&Value::String(id.to_string())), &json!({ "logs": logs }), Some(1), None))
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
        match nodes::retrieved_repository_metadata(db, node.info.id).await? {
            Some(metadata) => metadata,
            None => {
                let data = json!({"data": "This node does not have retrieved folder", "status": 200});
                return Ok(ctx.answer("calcjobs", Some(&id_value), &data, Some(1), None));
            }
        }
    } else {
        node.repository_metadata
    };
    let listing = list_dir(&metadata, &dir)?;
    Ok(ctx.answer("calcjobs", Some(&id_value), &listing, Some(1), None))
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
