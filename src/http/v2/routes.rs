//! The URL space of REST API v2 (aiida-core 0.x): its resources, which paths exist below
//! `/api/v2`, and the `available_endpoints` lines listing them.

use crate::query::node_classes::TypePrefixes;

use crate::http::v4::routes::{is_uuid_prefix, parse_user_id};

/// The resource named by the first path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Nodes,
    Calculations,
    Data,
    Codes,
    Structures,
    Kpoints,
    Bands,
    Cifs,
    Upfs,
    Computers,
    Users,
    Groups,
}

pub const RESOURCES: [Resource; 12] = [
    Resource::Bands,
    Resource::Calculations,
    Resource::Cifs,
    Resource::Codes,
    Resource::Computers,
    Resource::Data,
    Resource::Groups,
    Resource::Kpoints,
    Resource::Nodes,
    Resource::Structures,
    Resource::Upfs,
    Resource::Users,
];

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nodes => "nodes",
            Resource::Calculations => "calculations",
            Resource::Data => "data",
            Resource::Codes => "codes",
            Resource::Structures => "structures",
            Resource::Kpoints => "kpoints",
            Resource::Bands => "bands",
            Resource::Cifs => "cifs",
            Resource::Upfs => "upfs",
            Resource::Computers => "computers",
            Resource::Users => "users",
            Resource::Groups => "groups",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        RESOURCES.into_iter().find(|r| r.name() == name)
    }

    /// Whether the resource lists nodes (of a class).
    pub fn is_node(self) -> bool {
        !matches!(self, Resource::Computers | Resource::Users | Resource::Groups)
    }

    /// The node types of the resource's class and its subclasses, as today's `node_type`
    /// prefixes (no prefix: every node).
    pub fn class(self) -> TypePrefixes {
        TypePrefixes(match self {
            Resource::Calculations => &["process."],
            Resource::Data => &["data."],
            Resource::Codes => &["data.core.code."],
            Resource::Structures => &["data.core.structure."],
            Resource::Kpoints => &["data.core.array.kpoints."],
            Resource::Bands => &["data.core.array.bands."],
            Resource::Cifs => &["data.core.cif."],
            Resource::Upfs => &["data.core.upf."],
            _ => &[],
        })
    }

    /// The AiiDA 0.x class the resource served, for messages.
    pub fn orm_class(self) -> &'static str {
        match self {
            Resource::Nodes => "node.Node",
            Resource::Calculations => "calculation.Calculation",
            Resource::Data => "data.Data",
            Resource::Codes => "code.Code",
            Resource::Structures => "data.structure.StructureData",
            Resource::Kpoints => "data.array.kpoints.KpointsData",
            Resource::Bands => "data.array.bands.BandsData",
            Resource::Cifs => "data.cif.CifData",
            Resource::Upfs => "data.upf.UpfData",
            Resource::Computers => "computers.Computer",
            Resource::Users => "users.User",
            Resource::Groups => "groups.Group",
        }
    }

    /// Whether `content/download` exists (a 501 for kpoints and bands, as in v2).
    fn has_download(self) -> bool {
        matches!(
            self,
            Resource::Data
                | Resource::Structures
                | Resource::Cifs
                | Resource::Upfs
                | Resource::Kpoints
                | Resource::Bands
        )
    }

    /// Whether `content/visualization` exists.
    fn has_visualization(self) -> bool {
        self.is_node() && self != Resource::Calculations
    }
}

/// Sub-resources of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePart {
    Inputs,
    Outputs,
    Tree,
    Attributes,
    Extras,
    Visualization,
    Download,
    RetrievedInputs,
    RetrievedOutputs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/` and `/server/endpoints`.
    Endpoints,
    ServerInfo,
    List {
        resource: Resource,
        page: Option<u64>,
    },
    Detail {
        resource: Resource,
        id: String,
    },
    Schema(Resource),
    Statistics(Resource),
    Types(Resource),
    Node {
        resource: Resource,
        id: String,
        part: NodePart,
        page: Option<u64>,
    },
}

/// Why a path did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No rule matches: the 404 listing the endpoints.
    Unknown,
    /// The identifier segment cannot be an identifier of the resource (a 400).
    BadId(String),
}

/// The rules of one resource, for `available_endpoints`.
fn rules(resource: Resource) -> Vec<String> {
    let r = resource.name();
    let mut rules =
        vec![format!("/{r}/"), format!("/{r}/<id>/"), format!("/{r}/page/"), format!("/{r}/page/<int:page>/")];
    rules.push(format!("/{r}/schema/"));
    if !resource.is_node() {
        return rules;
    }
    rules.push(format!("/{r}/statistics/"));
    rules.push(format!("/{r}/types/"));
    for io in ["inputs", "outputs"] {
        rules.push(format!("/{r}/<id>/io/{io}/"));
        rules.push(format!("/{r}/<id>/io/{io}/page/"));
        rules.push(format!("/{r}/<id>/io/{io}/page/<int:page>/"));
    }
    rules.push(format!("/{r}/<id>/io/tree/"));
    rules.push(format!("/{r}/<id>/content/attributes/"));
    rules.push(format!("/{r}/<id>/content/extras/"));
    if resource.has_visualization() {
        rules.push(format!("/{r}/<id>/content/visualization/"));
    }
    if resource.has_download() {
        rules.push(format!("/{r}/<id>/content/download/"));
    }
    if resource == Resource::Calculations {
        rules.push(format!("/{r}/<id>/io/retrieved_inputs/"));
        rules.push(format!("/{r}/<id>/io/retrieved_outputs/"));
    }
    rules
}

/// The `available_endpoints` lines (the format of v4's: endpoint padded to 15, methods to 20).
pub fn available_endpoints(prefix: &str) -> Vec<String> {
    all_rules()
        .into_iter()
        .map(|(endpoint, rule)| format!("{endpoint:<15} {:<20} {prefix}{rule}", "GET,HEAD,OPTIONS"))
        .collect()
}

/// Every rule as `(endpoint, rule)`, in the order `available_endpoints` lists them: what the
/// OpenAPI document (`http::openapi`) describes.
pub fn all_rules() -> Vec<(&'static str, String)> {
    let mut all = Vec::new();
    for resource in RESOURCES {
        all.extend(rules(resource).into_iter().map(|rule| (resource.name(), rule)));
    }
    all.extend(["/", "/server/", "/server/endpoints/"].map(|rule| ("server", rule.to_string())));
    all
}

fn page_number(segment: &str) -> Result<u64, RouteError> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RouteError::Unknown);
    }
    segment.parse().map_err(|_| RouteError::Unknown)
}

fn pages(rest: &[&str]) -> Result<Option<u64>, RouteError> {
    match rest {
        [] => Ok(None),
        ["page"] => Ok(Some(1)),
        ["page", n] => Ok(Some(page_number(n)?)),
        _ => Err(RouteError::Unknown),
    }
}

/// Parses the path below the prefix (`/structures/ab12/io/inputs/page/2/`); empty segments
/// (trailing slashes, `//`) do not matter.
pub fn parse(path: &str) -> Result<Route, RouteError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (first, rest) = match segments.split_first() {
        None => return Ok(Route::Endpoints),
        Some((first, rest)) => (*first, rest),
    };
    match (first, rest) {
        ("server", []) => return Ok(Route::ServerInfo),
        ("server", ["endpoints"]) => return Ok(Route::Endpoints),
        _ => {}
    }
    let resource = Resource::parse(first).ok_or(RouteError::Unknown)?;
    let route = match rest {
        [] => Route::List { resource, page: None },
        ["page", ..] => Route::List { resource, page: pages(rest)? },
        ["schema"] => Route::Schema(resource),
        ["statistics"] if resource.is_node() => Route::Statistics(resource),
        ["types"] if resource.is_node() => Route::Types(resource),
        // Keyword paths of other resources are no identifiers.
        ["statistics" | "types"] => return Err(RouteError::Unknown),
        [id] => Route::Detail { resource, id: id.to_string() },
        [id, tail @ ..] if resource.is_node() => {
            let (part, page) = match tail {
                ["io", "inputs", p @ ..] => (NodePart::Inputs, pages(p)?),
                ["io", "outputs", p @ ..] => (NodePart::Outputs, pages(p)?),
                ["io", "tree"] => (NodePart::Tree, None),
                ["content", "attributes"] => (NodePart::Attributes, None),
                ["content", "extras"] => (NodePart::Extras, None),
                ["content", "visualization"] if resource.has_visualization() => (NodePart::Visualization, None),
                ["content", "download"] if resource.has_download() => (NodePart::Download, None),
                ["io", "retrieved_inputs"] if resource == Resource::Calculations => (NodePart::RetrievedInputs, None),
                ["io", "retrieved_outputs"] if resource == Resource::Calculations => (NodePart::RetrievedOutputs, None),
                _ => return Err(RouteError::Unknown),
            };
            Route::Node { resource, id: id.to_string(), part, page }
        }
        _ => return Err(RouteError::Unknown),
    };
    let id = match &route {
        Route::Detail { id, .. } | Route::Node { id, .. } => id,
        _ => return Ok(route),
    };
    let ok = if resource == Resource::Users { parse_user_id(id).is_some() } else { is_uuid_prefix(id) };
    if ok {
        Ok(route)
    } else if resource == Resource::Users {
        Err(RouteError::BadId(format!(
            "parameter id has to be an integer: users are identified by their id, not '{id}'"
        )))
    } else {
        Err(RouteError::BadId(format!(
            "parameter id has to be the start of a uuid (hexadecimal digits, dashes at their places), not '{id}'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        use Route::*;
        assert_eq!(parse(""), Ok(Endpoints));
        assert_eq!(parse("/server/"), Ok(ServerInfo));
        assert_eq!(parse("/structures/page/3/"), Ok(List { resource: Resource::Structures, page: Some(3) }));
        assert_eq!(parse("/codes/page"), Ok(List { resource: Resource::Codes, page: Some(1) }));
        assert_eq!(parse("/nodes/statistics"), Ok(Statistics(Resource::Nodes)));
        assert_eq!(parse("/users/types"), Err(RouteError::Unknown));
        assert_eq!(parse("/data/statistics/"), Ok(Statistics(Resource::Data)));
        assert_eq!(parse("/groups/statistics"), Err(RouteError::Unknown));
        assert_eq!(
            parse("/nodes/de83b1/io/inputs/page/2"),
            Ok(Node { resource: Resource::Nodes, id: "de83b1".into(), part: NodePart::Inputs, page: Some(2) })
        );
        assert_eq!(parse("/nodes/de83b1/io/retrieved_inputs"), Err(RouteError::Unknown));
        assert!(matches!(parse("/nodes/xyz"), Err(RouteError::BadId(_))));
        assert!(matches!(parse("/users/abc"), Err(RouteError::BadId(_))));
        assert_eq!(parse("/users/2"), Ok(Detail { resource: Resource::Users, id: "2".into() }));
        assert_eq!(
            parse("/kpoints/ab/content/download"),
            Ok(Node { resource: Resource::Kpoints, id: "ab".into(), part: NodePart::Download, page: None })
        );
        assert_eq!(parse("/nodes/ab/content/download"), Err(RouteError::Unknown));
        assert_eq!(parse("/nowhere"), Err(RouteError::Unknown));
        assert_eq!(parse("/nodes/page/x"), Err(RouteError::Unknown));
    }

    #[test]
    fn endpoint_lines() {
        let lines = available_endpoints("/api/v2");
        assert!(
            lines.contains(
                &"structures      GET,HEAD,OPTIONS     /api/v2/structures/<id>/content/download/".to_string()
            )
        );
        assert!(lines.contains(&"server          GET,HEAD,OPTIONS     /api/v2/server/".to_string()));
    }
}
