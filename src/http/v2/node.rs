//! The sub-resources of one node in v2: `io/inputs`, `io/outputs` (paged, filtered on the
//! neighbours), `io/tree` (the vis.js graph), `content/attributes|extras` (with include and
//! exclude lists), `content/visualization`, `content/download` and the files of a calculation
//! (`io/retrieved_inputs|retrieved_outputs`). The queries are `query::nodes`, shared with v4's
//! `links/*` and `contents/*`; the exporters are `export`.

use axum::body::Body;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::export::{self, ExportError, NodeFiles, NodeInfo};
use crate::http::error::{ApiError, ApiResult};
use crate::http::render::{json_dict, json_text};
use crate::http::request::Ctx;
use crate::http::request::attachment;
use crate::http::v4::collection::window;
use crate::http::v4::node::{LoadedNode, load_node};
use crate::model::linalg::Kernels;
use crate::model::node_class::{NodeClass, class_name};
use crate::query::nodes::{self, Direction, LinkList, NodeDict, TreeNode};
use crate::storage::db::Db;
use crate::storage::repository::{RepoError, RepoTree, Repository};

use super::collection::{envelope, node_rows, resolve};
use super::params::V2Params;
use super::routes::{NodePart, Resource};
use super::{respond, v2_error};

/// The largest file the exporters read into memory.
const EXPORT_FILE_MAX: u64 = 64 << 20;

/// The special keys each sub-resource takes (also those its OpenAPI document lists).
pub(crate) fn allowed_keys(part: NodePart) -> &'static [&'static str] {
    match part {
        NodePart::Inputs | NodePart::Outputs => &["limit", "offset", "perpage", "orderby"],
        NodePart::Tree => &["in_limit", "out_limit"],
        NodePart::Attributes => &["alist", "nalist"],
        NodePart::Extras => &["elist", "nelist"],
        NodePart::Visualization => &["visformat"],
        NodePart::Download => &["format"],
        NodePart::RetrievedInputs | NodePart::RetrievedOutputs => &["filename", "rtype"],
    }
}

fn endpoint(part: NodePart) -> &'static str {
    match part {
        NodePart::Inputs => "io/inputs",
        NodePart::Outputs => "io/outputs",
        NodePart::Tree => "io/tree",
        NodePart::Attributes => "content/attributes",
        NodePart::Extras => "content/extras",
        NodePart::Visualization => "content/visualization",
        NodePart::Download => "content/download",
        NodePart::RetrievedInputs => "io/retrieved_inputs",
        NodePart::RetrievedOutputs => "io/retrieved_outputs",
    }
}

/// `GET /<res>/<id>/<part>`
#[allow(clippy::too_many_arguments)]
pub async fn node_part(
    db: &Db,
    repo: &Repository,
    ctx: &Ctx,
    resource: Resource,
    id: &str,
    part: NodePart,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    let params = V2Params::parse(&ctx.query, Some(resource))?;
    params.only(allowed_keys(part), endpoint(part))?;
    let io = matches!(part, NodePart::Inputs | NodePart::Outputs);
    if !io && !params.filters.is_empty() {
        return Err(ApiError::bad_request("selecting a specific id does not allow to specify filters"));
    }
    let pk = resolve(db, resource, id).await?;
    let there = Answer { ctx, resource, id, pk };
    match part {
        NodePart::Inputs | NodePart::Outputs => {
            let direction = if part == NodePart::Inputs { Direction::Incoming } else { Direction::Outgoing };
            io_list(db, &there, &params, direction, page, max_rows).await
        }
        NodePart::Tree => tree(db, &there, &params, max_rows).await,
        NodePart::Attributes => {
            let keep = Keep::of(params.alist.as_deref(), params.nalist.as_deref());
            content(db, &there, NodeDict::Attributes, "attributes", keep).await
        }
        NodePart::Extras => {
            let keep = Keep::of(params.elist.as_deref(), params.nelist.as_deref());
            content(db, &there, NodeDict::Extras, "extras", keep).await
        }
        NodePart::Visualization => visualization(db, repo, &there, params.visformat.as_deref()).await,
        NodePart::Download => download(db, repo, &there, params.format.as_deref()).await,
        NodePart::RetrievedInputs | NodePart::RetrievedOutputs => {
            retrieved(db, repo, &there, &params, part == NodePart::RetrievedOutputs).await
        }
    }
}

/// What every answer about the node echoes.
struct Answer<'a> {
    ctx: &'a Ctx,
    resource: Resource,
    id: &'a str,
    pk: i64,
}

impl Answer<'_> {
    fn json(&self, data: Value, total: Option<i64>, link: Option<String>) -> Response {
        respond(&envelope(self.ctx, self.resource.name(), Some(self.id), Some(self.pk), data), total, link)
    }
}

async fn io_list(
    db: &Db,
    there: &Answer<'_>,
    params: &V2Params,
    direction: Direction,
    page: Option<u64>,
    max_rows: i64,
) -> ApiResult<Response> {
    params.check_paging(page)?;
    let conditions = super::params::conditions(&params.filters);
    let list = LinkList::new(db.dialect(), there.pk, direction, &conditions, &params.orderby(Resource::Nodes)?)?;
    if page.is_none() {
        window(&params.shared, None, 0, max_rows)?;
    }
    let total = list.count(db).await?;
    let window = window(&params.shared, page, total, max_rows).map_err(v2_error)?;
    let rows = list.rows(db, window.limit, window.offset).await?;
    let items = node_rows(db, rows.into_iter().map(|link| link.node).collect()).await?;
    let label = if direction == Direction::Incoming { "inputs" } else { "outputs" };
    let mut data = Map::new();
    data.insert(label.into(), Value::Array(items));
    let link = window.page.map(|(page, last)| there.ctx.page_links(page, last));
    Ok(there.json(Value::Object(data), Some(total), link))
}

/// Which keys of a dict to return.
enum Keep<'a> {
    All,
    Only(&'a [String]),
    AllBut(&'a [String]),
}

impl<'a> Keep<'a> {
    fn of(only: Option<&'a [String]>, but: Option<&'a [String]>) -> Self {
        match (only, but) {
            (Some(only), _) => Keep::Only(only),
            (None, Some(but)) => Keep::AllBut(but),
            (None, None) => Keep::All,
        }
    }
}

async fn content(db: &Db, there: &Answer<'_>, dict: NodeDict, name: &str, keep: Keep<'_>) -> ApiResult<Response> {
    let mut dict = json_dict(nodes::node_dict(db, there.pk, dict).await?.as_deref());
    match keep {
        Keep::All => {}
        Keep::Only(keys) => dict.retain(|k, _| keys.contains(k)),
        Keep::AllBut(keys) => dict.retain(|k, _| !keys.contains(k)),
    }
    let mut data = Map::new();
    data.insert(name.into(), Value::Object(dict));
    Ok(there.json(Value::Object(data), Some(1), None))
}

// ---------------------------------------------------------------------------------------------
// io/tree

fn tree_info(node: &TreeNode) -> NodeInfo {
    NodeInfo {
        id: node.id,
        uuid: node.uuid.clone(),
        node_type: node.node_type.clone(),
        process_type: node.process_type.clone(),
        label: node.label.clone(),
        description: String::new(),
        attributes: node.attributes.as_deref().map(json_text).unwrap_or_else(|| json!({})),
        attribute_keys: Vec::new(),
        computer_label: node.computer_label.clone(),
    }
}

/// A node of the vis.js graph.
fn vis_node(index: usize, node: &TreeNode, group: &str, link: Option<(&Option<String>, &Option<String>)>) -> Value {
    let display = node.node_type.trim_end_matches('.').rsplit('.').next().unwrap_or("").to_string();
    let description = export::description(&tree_info(node));
    let shape = if node.node_type.starts_with("process.") {
        "square"
    } else if NodeClass::of(&node.node_type) == NodeClass::Code {
        "triangle"
    } else {
        "dot"
    };
    let mut item = json!({
        "id": index,
        "nodeid": node.id,
        "nodeuuid": node.uuid,
        "nodetype": node.node_type,
        "nodelabel": node.label,
        "displaytype": display,
        "group": group,
        "description": if description.is_empty() { display.clone() } else { description },
        "shape": shape,
    });
    if let Some((label, link_type)) = link {
        item["linklabel"] = label.clone().map_or(Value::Null, Value::String);
        item["linktype"] = link_type.clone().map_or(Value::Null, Value::String);
    }
    item
}

async fn tree(db: &Db, there: &Answer<'_>, params: &V2Params, max_rows: i64) -> ApiResult<Response> {
    let in_limit = params.shared.in_limit().map_err(|_| ApiError::bad_request("in_limit must be an integer"))?;
    let out_limit = params.shared.out_limit().map_err(|_| ApiError::bad_request("out_limit must be an integer"))?;
    let root = nodes::tree_node(db, there.pk).await?;
    let mut vis_nodes = vec![vis_node(0, &root, "mainNode", None)];
    let mut edges = Vec::new();
    let mut data = Map::new();
    for (direction, limit) in [(Direction::Incoming, in_limit), (Direction::Outgoing, out_limit)] {
        let (group, name) =
            if direction == Direction::Incoming { ("inputs", "incomings") } else { ("outputs", "outgoings") };
        let total = nodes::link_count(db, there.pk, direction).await?;
        let limit = limit.filter(|l| *l >= 0).unwrap_or(total).min(max_rows);
        let links = nodes::tree_links(db, there.pk, direction, limit).await?;
        data.insert(format!("sent_no_of_{name}"), Value::from(links.len()));
        data.insert(format!("total_no_of_{name}"), Value::from(total));
        let mut seen: Vec<i64> = Vec::new();
        for link in &links {
            if seen.contains(&link.node.id) {
                continue;
            }
            seen.push(link.node.id);
            let index = vis_nodes.len();
            vis_nodes.push(vis_node(index, &link.node, group, Some((&link.link_label, &link.link_type))));
            let label = link.link_type.clone().map_or(Value::Null, Value::String);
            edges.push(if direction == Direction::Incoming {
                json!({"from": index, "to": 0, "arrows": "to", "color": {"inherit": "from"}, "label": label})
            } else {
                json!({"from": 0, "to": index, "arrows": "to", "color": {"inherit": "to"}, "label": label})
            });
        }
    }
    data.insert("nodes".into(), Value::Array(vis_nodes));
    data.insert("edges".into(), Value::Array(edges));
    // As v2 (and v4's links/tree): the tree is not counted.
    Ok(there.json(Value::Object(data), Some(0), None))
}

// ---------------------------------------------------------------------------------------------
// Files: visualization, download, retrieved folders

/// The node's repository files, for the exporters.
struct Files {
    repo: Repository,
    tree: RepoTree,
}

impl NodeFiles for Files {
    fn read(&self, path: &str) -> Result<Vec<u8>, RepoError> {
        let key = self.tree.file_key(path)?;
        self.repo.read_object_to_vec(key, EXPORT_FILE_MAX)
    }
}

/// Runs blocking work (file reads, exporters) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

fn export_error(err: ExportError) -> ApiError {
    match err {
        ExportError::Unsupported(format) => ApiError::bad_request(format!("The format {format} is not supported.")),
        ExportError::NotAvailable(msg) => ApiError::NotImplemented(msg),
        ExportError::Invalid(msg) => ApiError::bad_request(msg),
        ExportError::Repo(e) => e.into(),
    }
}

/// Exports the node in `format`, and/or computes its derived properties, off the async threads.
async fn exported(
    repo: &Repository,
    node: LoadedNode,
    format: Option<String>,
) -> ApiResult<(Option<export::Export>, Value)> {
    let repo = repo.clone();
    blocking(move || {
        let files = Files { repo, tree: RepoTree::from_json_str(&node.repository_metadata)? };
        let content = match &format {
            Some(format) => Some(export::export(&node.info, &files, format).map_err(export_error)?),
            None => None,
        };
        let derived = match NodeClass::of(&node.info.node_type) {
            NodeClass::Structure | NodeClass::Kpoints | NodeClass::Bands => {
                export::derived_properties(&node.info, &files).map_err(export_error)?
            }
            _ => Value::Null,
        };
        Ok((content, derived))
    })
    .await
}

fn not_available(node_type: &str) -> ApiError {
    let class = class_name(node_type).trim_end_matches("Data");
    ApiError::NotImplemented(format!("This endpoint is not available for {class}."))
}

async fn visualization(db: &Db, repo: &Repository, there: &Answer<'_>, visformat: Option<&str>) -> ApiResult<Response> {
    let node = load_node(db, there.pk).await?;
    let node_type = node.info.node_type.clone();
    if visformat.is_some() && !matches!(NodeClass::of(&node_type), NodeClass::Structure | NodeClass::Cif) {
        return Err(ApiError::bad_request("visformat applies to structures and cifs only"));
    }
    let data = match NodeClass::of(&node_type) {
        NodeClass::Structure => {
            let format = visformat.unwrap_or("xsf").to_string();
            let pbc: Vec<Value> = ["pbc1", "pbc2", "pbc3"]
                .iter()
                .map(|k| node.info.attributes.get(*k).cloned().unwrap_or(Value::Null))
                .collect();
            let (content, derived) = exported(repo, node, Some(format.clone())).await?;
            let text = content.map(|c| String::from_utf8_lossy(&c.content).into_owned()).unwrap_or_default();
            json!({
                "str_viz_info": {"data": text, "format": format},
                "dimensionality": derived["dimensionality"],
                "formula": derived["formula"],
                "pbc": pbc,
            })
        }
        NodeClass::Cif => {
            let format = visformat.unwrap_or("cif").to_string();
            let (content, _) = exported(repo, node, Some(format.clone())).await?;
            let text = content.map(|c| String::from_utf8_lossy(&c.content).into_owned()).unwrap_or_default();
            json!({"str_viz_info": {"data": text, "format": format}})
        }
        NodeClass::Kpoints => {
            let reciprocal = reciprocal_vectors(node.info.attributes.get("cell"));
            let (_, mut derived) = exported(repo, node, None).await?;
            // v4 renamed the labelled points; v2 had the names of 0.12, and the reciprocal
            // vectors of the cell with their units.
            if let Value::Object(map) = &mut derived {
                if let Some(vectors) = reciprocal {
                    for (name, b) in ["b1", "b2", "b3"].into_iter().zip(vectors) {
                        map.insert(
                            name.into(),
                            Value::Array(b.iter().map(|x| crate::model::pyjson::float(*x)).collect()),
                        );
                    }
                    map.insert("reciprocal_vectors_unit".into(), Value::from("1/\u{212b}"));
                    map.insert("kpoints_abs_unit".into(), Value::from("1/\u{212b}"));
                }
                for (new, old) in [
                    ("labelled_kpoints_rel", "kpoints_rel"),
                    ("labelled_path", "path"),
                    ("labelled_kpoints_abs", "kpoints"),
                ] {
                    if let Some(v) = map.remove(new) {
                        map.insert(old.into(), v);
                    }
                }
            }
            derived
        }
        NodeClass::Bands => {
            // The band JSON export, and the y-axis label 0.12 added: `<label> (<units>)`.
            let units = match node.info.attributes.get("units") {
                Some(Value::String(units)) => units.clone(),
                Some(other) if !other.is_null() => other.to_string(),
                _ => "None".to_string(),
            };
            let y_label = format!("{} ({units})", node.info.label);
            let (_, derived) = exported(repo, node, None).await?;
            let mut bands = derived.get("bands").cloned().unwrap_or(Value::Null);
            if let Value::Object(map) = &mut bands {
                map.insert("Y_label".into(), Value::String(y_label));
            }
            bands
        }
        NodeClass::Upf => json!([]),
        _ => return Err(not_available(&node_type)),
    };
    let mut wrapped = Map::new();
    wrapped.insert("visualization".into(), data);
    Ok(there.json(Value::Object(wrapped), Some(1), None))
}

/// The reciprocal vectors (`2π · inv(cell)ᵀ`, one per row) of a cell attribute.
fn reciprocal_vectors(cell: Option<&Value>) -> Option<[[f64; 3]; 3]> {
    let cell = cell?.as_array().filter(|rows| rows.len() == 3)?;
    let mut m = [[0.0; 3]; 3];
    for (i, row) in cell.iter().enumerate() {
        let row = row.as_array().filter(|row| row.len() == 3)?;
        for (j, x) in row.iter().enumerate() {
            m[i][j] = x.as_f64()?;
        }
    }
    Kernels::REFERENCE.reciprocal_cell(&m)
}

async fn download(db: &Db, repo: &Repository, there: &Answer<'_>, format: Option<&str>) -> ApiResult<Response> {
    let node = load_node(db, there.pk).await?;
    let node_type = node.info.node_type.clone();
    let uuid = node.info.uuid.clone();
    let (format, filename) = match NodeClass::of(&node_type) {
        NodeClass::Structure => {
            let format = format.unwrap_or("cif").to_string();
            let filename = format!("{uuid}_structure.{format}");
            (format, filename)
        }
        NodeClass::Cif => ("cif".to_string(), format!("{uuid}.cif")),
        NodeClass::Upf => {
            let filename = node.info.attributes.get("filename").and_then(Value::as_str).unwrap_or("").to_string();
            ("upf".to_string(), if filename.is_empty() { format!("{uuid}.upf") } else { filename })
        }
        _ => return Err(not_available(&node_type)),
    };
    let (content, _) = exported(repo, node, Some(format)).await?;
    let content = content.map(|c| c.content).unwrap_or_default();
    let size = content.len() as u64;
    Ok(attachment(Body::from(content), Some(size), &filename))
}

async fn retrieved(
    db: &Db,
    repo: &Repository,
    there: &Answer<'_>,
    params: &V2Params,
    outputs: bool,
) -> ApiResult<Response> {
    let node = load_node(db, there.pk).await?;
    let metadata = if NodeClass::of(&node.info.node_type) != NodeClass::CalcJob {
        None
    } else if outputs {
        match nodes::retrieved_repository_metadata(db, there.pk).await? {
            Some(metadata) => Some(metadata),
            None => {
                let message = json!({"data": "This node does not have retrieved folder", "status": 200});
                return Ok(there.json(json!({ "retrieved_outputs": message }), Some(1), None));
            }
        }
    } else {
        Some(node.repository_metadata)
    };
    let tree = match metadata {
        Some(metadata) => RepoTree::from_json_str(&metadata)?,
        None => RepoTree::from_json_str("{}")?,
    };
    if let Some(rtype) = &params.rtype
        && rtype != "download"
    {
        return Err(ApiError::bad_request("rtype is not supported"));
    }
    let Some(filename) = params.shared.filename.as_ref().map(crate::http::params::python_str) else {
        if params.rtype.is_some() {
            return Err(ApiError::bad_request("rtype=download needs the filename of the file to download"));
        }
        let files: Vec<Value> = tree.files().into_iter().map(|(path, _)| Value::String(path)).collect();
        let mut data = Map::new();
        data.insert(if outputs { "retrieved_outputs" } else { "retrieved_inputs" }.into(), Value::Array(files));
        return Ok(there.json(Value::Object(data), Some(1), None));
    };
    let key = match tree.file_key(&filename) {
        Ok(key) => key.to_string(),
        Err(RepoError::NotFound(_) | RepoError::NotAFile(_)) => {
            return Err(ApiError::not_found(format!("Error in getting {filename} content")));
        }
        Err(e) => return Err(e.into()),
    };
    let repo = repo.clone();
    let (size, stream) = blocking(move || Ok(repo.stream_object(&key)?)).await?;
    Ok(attachment(Body::from_stream(stream), Some(size), &filename.replace('/', "_")))
}
