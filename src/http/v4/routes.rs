//! The URL space of REST API v4: which paths exist, and what each one asks for.

/// The resource named by the first path segment after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Nodes,
    Computers,
    Users,
    Groups,
    Processes,
    Calcjobs,
}

impl Resource {
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nodes => "nodes",
            Resource::Computers => "computers",
            Resource::Users => "users",
            Resource::Groups => "groups",
            Resource::Processes => "processes",
            Resource::Calcjobs => "calcjobs",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "nodes" => Resource::Nodes,
            "computers" => Resource::Computers,
            "users" => Resource::Users,
            "groups" => Resource::Groups,
            "processes" => Resource::Processes,
            "calcjobs" => Resource::Calcjobs,
            _ => return None,
        })
    }
}

/// Sub-resources of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodePart {
    Incoming,
    Outgoing,
    Tree,
    Attributes,
    Extras,
    DerivedProperties,
    Comments,
    RepoList,
    RepoContents,
    Download,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    ServerInfo,
    ServerEndpoints,
    QueryBuilder,
    /// `/<res>`, `/<res>/page`, `/<res>/page/<n>`
    List {
        resource: Resource,
        page: Option<u64>,
    },
    /// `/<res>/<id>`
    Detail {
        resource: Resource,
        id: String,
    },
    ProjectableProperties(Resource),
    Statistics,
    FullTypes,
    FullTypesCount,
    DownloadFormats,
    /// `/nodes/<id>/...`; `page` only for the link lists.
    Node {
        id: String,
        part: NodePart,
        page: Option<u64>,
    },
    ProcessReport {
        id: String,
    },
    CalcjobFiles {
        id: String,
        outputs: bool,
    },
}

/// Why a path did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No rule matches: the 404 that lists the available endpoints.
    Unknown,
    /// A rule matches but the identifier segment is not an identifier of that resource.
    BadId { resource: Resource, id: String },
}

/// The rules, as the reference lists them in `available_endpoints`.
const RULES: &[(&str, &str)] = &[
    ("calcjobs", "/calcjobs/<id>/input_files/"),
    ("calcjobs", "/calcjobs/<id>/output_files/"),
    ("computers", "/computers/"),
    ("computers", "/computers/<id>/"),
    ("computers", "/computers/page/"),
    ("computers", "/computers/page/<int:page>/"),
    ("computers", "/computers/projectable_properties/"),
    ("groups", "/groups/"),
    ("groups", "/groups/<id>/"),
    ("groups", "/groups/page/"),
    ("groups", "/groups/page/<int:page>/"),
    ("groups", "/groups/projectable_properties/"),
    ("nodes", "/nodes/"),
    ("nodes", "/nodes/<id>/"),
    ("nodes", "/nodes/<id>/contents/attributes/"),
    ("nodes", "/nodes/<id>/contents/comments/"),
    ("nodes", "/nodes/<id>/contents/derived_properties/"),
    ("nodes", "/nodes/<id>/contents/extras/"),
    ("nodes", "/nodes/<id>/download/"),
    ("nodes", "/nodes/<id>/links/incoming/"),
    ("nodes", "/nodes/<id>/links/incoming/page/"),
    ("nodes", "/nodes/<id>/links/incoming/page/<int:page>/"),
    ("nodes", "/nodes/<id>/links/outgoing/"),
    ("nodes", "/nodes/<id>/links/outgoing/page/"),
    ("nodes", "/nodes/<id>/links/outgoing/page/<int:page>/"),
    ("nodes", "/nodes/<id>/links/tree/"),
    ("nodes", "/nodes/<id>/repo/contents/"),
    ("nodes", "/nodes/<id>/repo/list/"),
    ("nodes", "/nodes/download_formats/"),
    ("nodes", "/nodes/full_types/"),
    ("nodes", "/nodes/full_types_count/"),
    ("nodes", "/nodes/page/"),
    ("nodes", "/nodes/page/<int:page>/"),
    ("nodes", "/nodes/projectable_properties/"),
    ("nodes", "/nodes/statistics/"),
    ("processes", "/processes/<id>/report/"),
    ("processes", "/processes/projectable_properties/"),
    ("querybuilder", "/querybuilder/"),
    ("server", "/"),
    ("server", "/server/"),
    ("server", "/server/endpoints/"),
    ("users", "/users/"),
    ("users", "/users/<id>/"),
    ("users", "/users/page/"),
    ("users", "/users/page/<int:page>/"),
    ("users", "/users/projectable_properties/"),
];

/// The `available_endpoints` list: `endpoint` padded to 15, methods padded to 20, the rule.
/// Methods are in a fixed order (the reference's order changes from process to process).
pub fn available_endpoints(prefix: &str, posting: bool) -> Vec<String> {
    rules(posting)
        .map(|(endpoint, rule)| {
            let methods = if endpoint == "querybuilder" { "GET,HEAD,OPTIONS,POST" } else { "GET,HEAD,OPTIONS" };
            format!("{endpoint:<15} {methods:<20} {prefix}{rule}")
        })
        .collect()
}

/// The rules served (`querybuilder` only when posting), as `(endpoint, rule)`: what
/// `available_endpoints` lists and the OpenAPI document (`http::openapi`) describes.
pub fn rules(posting: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    RULES.iter().copied().filter(move |(endpoint, _)| posting || *endpoint != "querybuilder")
}

/// Parses the path below the prefix (e.g. `/nodes/abc/links/incoming/page/2/`).
pub fn parse(path: &str, posting: bool) -> Result<Route, RouteError> {
    // Empty segments are ignored, so trailing slashes and `//` do not matter.
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (first, rest) = match segments.split_first() {
        None => return Ok(Route::ServerEndpoints),
        Some((first, rest)) => (*first, rest),
    };
    match (first, rest) {
        ("server", []) => return Ok(Route::ServerInfo),
        ("server", ["endpoints"]) => return Ok(Route::ServerEndpoints),
        ("querybuilder", []) if posting => return Ok(Route::QueryBuilder),
        _ => {}
    }
    let resource = Resource::parse(first).ok_or(RouteError::Unknown)?;
    let route = match (resource, rest) {
        (Resource::Processes | Resource::Calcjobs, []) => return Err(RouteError::Unknown),
        (Resource::Processes, ["projectable_properties"]) => Route::ProjectableProperties(resource),
        (Resource::Processes, [id, "report"]) => Route::ProcessReport { id: id.to_string() },
        (Resource::Calcjobs, [id, "input_files"]) => Route::CalcjobFiles { id: id.to_string(), outputs: false },
        (Resource::Calcjobs, [id, "output_files"]) => Route::CalcjobFiles { id: id.to_string(), outputs: true },
        (Resource::Processes | Resource::Calcjobs, _) => return Err(RouteError::Unknown),
        (_, []) => Route::List { resource, page: None },
        (_, ["page"]) => Route::List { resource, page: Some(1) },
        (_, ["page", n]) => Route::List { resource, page: Some(page_number(n)?) },
        (_, ["projectable_properties"]) => Route::ProjectableProperties(resource),
        (Resource::Nodes, ["statistics"]) => Route::Statistics,
        (Resource::Nodes, ["full_types"]) => Route::FullTypes,
        (Resource::Nodes, ["full_types_count"]) => Route::FullTypesCount,
        (Resource::Nodes, ["download_formats"]) => Route::DownloadFormats,
        (_, [id]) => Route::Detail { resource, id: id.to_string() },
        (Resource::Nodes, [id, tail @ ..]) => {
            let (part, page) = node_part(tail)?;
            Route::Node { id: id.to_string(), part, page }
        }
        _ => return Err(RouteError::Unknown),
    };
    check_id(&route)?;
    Ok(route)
}

fn page_number(segment: &str) -> Result<u64, RouteError> {
    // Werkzeug's `<int:page>` takes ASCII digits only.
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RouteError::Unknown);
    }
    segment.parse().map_err(|_| RouteError::Unknown)
}

fn node_part(tail: &[&str]) -> Result<(NodePart, Option<u64>), RouteError> {
    let links = |part: NodePart, pages: &[&str]| -> Result<(NodePart, Option<u64>), RouteError> {
        match pages {
            [] => Ok((part, None)),
            ["page"] => Ok((part, Some(1))),
            ["page", n] => Ok((part, Some(page_number(n)?))),
            _ => Err(RouteError::Unknown),
        }
    };
    match tail {
        ["links", "incoming", pages @ ..] => links(NodePart::Incoming, pages),
        ["links", "outgoing", pages @ ..] => links(NodePart::Outgoing, pages),
        ["links", "tree"] => Ok((NodePart::Tree, None)),
        ["contents", "attributes"] => Ok((NodePart::Attributes, None)),
        ["contents", "extras"] => Ok((NodePart::Extras, None)),
        ["contents", "derived_properties"] => Ok((NodePart::DerivedProperties, None)),
        ["contents", "comments"] => Ok((NodePart::Comments, None)),
        ["repo", "list"] => Ok((NodePart::RepoList, None)),
        ["repo", "contents"] => Ok((NodePart::RepoContents, None)),
        ["download"] => Ok((NodePart::Download, None)),
        _ => Err(RouteError::Unknown),
    }
}

fn check_id(route: &Route) -> Result<(), RouteError> {
    let (resource, id) = match route {
        Route::Detail { resource, id } => (*resource, id),
        Route::Node { id, .. } => (Resource::Nodes, id),
        Route::ProcessReport { id } => (Resource::Processes, id),
        Route::CalcjobFiles { id, .. } => (Resource::Calcjobs, id),
        _ => return Ok(()),
    };
    let ok = match resource {
        Resource::Users => parse_user_id(id).is_some(),
        _ => is_uuid_prefix(id),
    };
    if ok { Ok(()) } else { Err(RouteError::BadId { resource, id: id.clone() }) }
}

/// A user id in the path: an integer, optionally signed, as Python's `int()` reads it.
pub fn parse_user_id(segment: &str) -> Option<i64> {
    let s = segment.trim().replace('_', "");
    if segment.trim().starts_with('_') || segment.trim().ends_with('_') || segment.contains("__") {
        return None;
    }
    s.strip_prefix('+').unwrap_or(&s).parse().ok()
}

/// Whether `segment` is a prefix of a canonically written UUID (hex digits, dashes only at
/// positions 8, 13, 18 and 23), the identifier form the reference accepts in paths.
pub fn is_uuid_prefix(segment: &str) -> bool {
    if segment.is_empty() || segment.len() > 36 {
        return false;
    }
    segment.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_lines_are_padded() {
        let lines = available_endpoints("/api/v4", true);
        assert_eq!(lines.len(), 46);
        assert_eq!(lines[0], "calcjobs        GET,HEAD,OPTIONS     /api/v4/calcjobs/<id>/input_files/");
        assert!(lines.contains(&"querybuilder    GET,HEAD,OPTIONS,POST /api/v4/querybuilder/".to_string()));
        assert_eq!(available_endpoints("/api/v4", false).len(), 45);
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(sorted, lines);
    }

    #[test]
    fn routes() {
        use Route::*;
        assert_eq!(parse("", true), Ok(ServerEndpoints));
        assert_eq!(parse("/server/", true), Ok(ServerInfo));
        assert_eq!(parse("/querybuilder", false), Err(RouteError::Unknown));
        assert_eq!(parse("/nodes//page/3/", true), Ok(List { resource: Resource::Nodes, page: Some(3) }));
        assert_eq!(parse("/nodes/page/abc", true), Err(RouteError::Unknown));
        assert_eq!(parse("/nodes/statistics", true), Ok(Statistics));
        assert_eq!(
            parse("/nodes/ab12/links/incoming/page", true),
            Ok(Node { id: "ab12".into(), part: NodePart::Incoming, page: Some(1) })
        );
        assert_eq!(parse("/nodes/ab12/download_formats", true), Err(RouteError::Unknown));
        assert!(matches!(parse("/nodes/zzz", true), Err(RouteError::BadId { .. })));
        assert!(matches!(parse("/nodes/d2b196a090", true), Err(RouteError::BadId { .. })));
        assert_eq!(parse("/users/3", true), Ok(Detail { resource: Resource::Users, id: "3".into() }));
        assert!(matches!(parse("/users/abc", true), Err(RouteError::BadId { .. })));
        assert_eq!(parse("/processes/7/report", true), Ok(ProcessReport { id: "7".into() }));
        assert_eq!(parse("/processes", true), Err(RouteError::Unknown));
        assert_eq!(parse("/nonexistent", true), Err(RouteError::Unknown));
    }

    #[test]
    fn uuid_prefixes() {
        assert!(is_uuid_prefix("d2b196a0"));
        assert!(is_uuid_prefix("d2b196a0-90"));
        assert!(is_uuid_prefix("d2b196a0-9030-4ff1-9077-d7d9000cf833"));
        assert!(!is_uuid_prefix("d2b196a090"));
        assert!(!is_uuid_prefix("d2b196a0-9030-4ff1-9077-d7d9000cf8331"));
        assert!(!is_uuid_prefix("xyz"));
    }

    #[test]
    fn user_ids() {
        assert_eq!(parse_user_id("5"), Some(5));
        assert_eq!(parse_user_id("+5"), Some(5));
        assert_eq!(parse_user_id("-3"), Some(-3));
        assert_eq!(parse_user_id("1_0"), Some(10));
        assert_eq!(parse_user_id("abc"), None);
        assert_eq!(parse_user_id("_1"), None);
    }
}
