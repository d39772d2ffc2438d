//! One item of `path`: its entity and type filter, its tag, its filters and projections, and
//! its join to an earlier item.

use super::*;

pub(super) const ITEM_KEYS: [&str; 13] = [
    "entity_type",
    "orm_base",
    "tag",
    "filters",
    "project",
    "subclassing",
    "edge_tag",
    "edge_filters",
    "edge_project",
    "outerjoin",
    "joining_keyword",
    "joining_value",
    "cls",
];

/// The joins an entity accepts and the entity each one joins to.
pub(super) fn relationships(entity: Entity) -> &'static [(JoinKind, Entity)] {
    use Entity as E;
    use JoinKind as J;
    match entity {
        E::Node => &[
            (J::WithIncoming, E::Node),
            (J::WithOutgoing, E::Node),
            (J::WithAncestors, E::Node),
            (J::WithDescendants, E::Node),
            (J::WithComputer, E::Computer),
            (J::WithUser, E::User),
            (J::WithGroup, E::Group),
            (J::WithComment, E::Comment),
            (J::WithLog, E::Log),
        ],
        E::Group => &[(J::WithNode, E::Node), (J::WithUser, E::User)],
        E::Computer => &[(J::WithNode, E::Node)],
        E::User => &[(J::WithNode, E::Node), (J::WithGroup, E::Group), (J::WithComment, E::Comment)],
        E::Comment => &[(J::WithNode, E::Node), (J::WithUser, E::User)],
        E::Log => &[(J::WithNode, E::Node)],
        E::Link => &[],
    }
}

/// One item of `path` (a dict, or a bare entity type string), being read.
pub(super) struct PathItem {
    index: usize,
    entries: Vec<(String, OValue)>,
    /// `with_*` and `direction` keys that are set.
    join_kwargs: Vec<(String, OValue)>,
}

/// The type filter an entity type implies: (column, condition).
pub(super) type TypeFilter = Option<(&'static str, OValue)>;

impl PathItem {
    /// Checks the keys of the item.
    fn new(index: usize, item: &OValue) -> QueryResult<Self> {
        let entries: Vec<(String, OValue)> = match item {
            OValue::Object(entries) => entries.clone(),
            OValue::String(s) => vec![("entity_type".to_string(), OValue::String(s.clone()))],
            other => {
                return Err(bad(format!(
                    "path item {index} must be an object (or an entity type string), not {}",
                    other.type_name()
                )));
            }
        };
        let mut join_kwargs = Vec::new();
        for (key, value) in &entries {
            if key.starts_with("with_") || key == "direction" {
                if !value.is_null() {
                    join_kwargs.push((key.clone(), value.clone()));
                }
            } else if !ITEM_KEYS.contains(&key.as_str()) {
                return Err(bad(format!(
                    "'{key}' is not a valid key of path item {index}; valid keys are: {}, and a joining keyword such as with_incoming",
                    ITEM_KEYS[..12].join(", ")
                )));
            }
        }
        Ok(Self { index, entries, join_kwargs })
    }

    fn get(&self, key: &str) -> Option<&OValue> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| !v.is_null())
    }

    fn flag(&self, key: &str, default: bool) -> QueryResult<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(OValue::Bool(b)) => Ok(*b),
            Some(other) => {
                Err(bad(format!("path item {}: '{key}' must be true or false, not {}", self.index, other.show())))
            }
        }
    }

    /// The entity, the type filter it implies and the types given.
    fn entity(&self) -> QueryResult<(Entity, TypeFilter, Vec<String>)> {
        let index = self.index;
        if self.get("cls").is_some() {
            return Err(bad(format!("path item {index}: 'cls' cannot be sent as JSON; give 'entity_type' instead")));
        }
        let types: Vec<String> = match self.get("entity_type") {
            Some(OValue::String(s)) => vec![s.clone()],
            Some(OValue::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("path item {index}: {} in 'entity_type' is not a string", t.show())))
                })
                .collect::<QueryResult<_>>()?,
            None => {
                return Err(bad(format!("path item {index} needs an 'entity_type' (\"\" for any node)")));
            }
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'entity_type' must be a string or a list of strings, not {}",
                    other.show()
                )));
            }
        };
        if let Some(orm_base) = self.get("orm_base")
            && orm_base.as_str().is_none()
        {
            return Err(bad(format!("path item {index}: 'orm_base' must be a string")));
        }
        let subclassing = self.flag("subclassing", true)?;
        let (entity, type_filter) = classify(&types, subclassing, index)?;
        Ok((entity, type_filter, types))
    }

    /// The item's tag (given, or made up as AiiDA does).
    fn tag(&self, types: &[String], entity: Entity, tags: &Tags) -> QueryResult<String> {
        match self.get("tag") {
            Some(OValue::String(tag)) => {
                if tag.contains("--") {
                    return Err(bad(format!("tag '{tag}' cannot contain '--', which joins the tags of edges")));
                }
                if tags.get(tag).is_some() {
                    return Err(bad(format!("the tag '{tag}' is already in use")));
                }
                Ok(tag.clone())
            }
            None => Ok(unique_tag(types, entity, tags)),
            Some(other) => Err(bad(format!("path item {}: 'tag' must be a string, not {}", self.index, other.show()))),
        }
    }

    /// Collects the filters and projection of `tag` given under `filters_key`/`project_key`.
    fn add_specs(&self, tag: &str, filters_key: &str, project_key: &str, specs: &mut Specs) -> QueryResult<()> {
        if let Some(filters) = self.get(filters_key) {
            let Some(filters) = filters.as_object() else {
                return Err(bad(format!("path item {}: '{filters_key}' must be an object", self.index)));
            };
            specs.add_filters(tag, filters)?;
        }
        if let Some(project) = self.get(project_key) {
            specs.set_projection(tag, parse_projection_spec(project, tag)?);
        }
        Ok(())
    }

    /// `joining_keyword` and `joining_value`, when given.
    fn explicit_join(&self) -> QueryResult<(Option<&str>, Option<&str>)> {
        let index = self.index;
        let keyword = match self.get("joining_keyword") {
            None => None,
            Some(OValue::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'joining_keyword' must be a string, not {}",
                    other.show()
                )));
            }
        };
        let value = match self.get("joining_value") {
            None => None,
            Some(OValue::String(s)) => Some(s.as_str()),
            Some(other) => {
                return Err(bad(format!(
                    "path item {index}: 'joining_value' must be a tag (a string), not {}",
                    other.show()
                )));
            }
        };
        Ok((keyword, value))
    }

    /// The first item: nothing to join to.
    fn check_unjoined(&self, explicit: (Option<&str>, Option<&str>)) -> QueryResult<()> {
        if !self.join_kwargs.is_empty() || explicit.0.is_some() || explicit.1.is_some() {
            return Err(bad("the first path item cannot be joined to anything: remove its joining keyword"));
        }
        for key in ["edge_tag", "edge_filters", "edge_project"] {
            if self.get(key).is_some() {
                return Err(bad(format!("the first path item has no edge: remove '{key}'")));
            }
        }
        Ok(())
    }

    /// The joining keyword and the tag joined to, from a `with_*`/`direction` key, the explicit
    /// pair, or the default (a node `with_incoming` the item before, others `with_node`).
    fn join_spec(
        &self,
        entity: Entity,
        tag: &str,
        explicit: (Option<&str>, Option<&str>),
        earlier: &[Vertex],
        valid_names: &dyn Fn() -> String,
    ) -> QueryResult<(String, String)> {
        let index = self.index;
        if self.join_kwargs.len() > 1 || (self.join_kwargs.len() == 1 && explicit.0.is_some()) {
            return Err(bad(format!("path item {index} ('{tag}') gives more than one joining specification")));
        }
        if let Some((key, value)) = self.join_kwargs.first() {
            if key != "direction" {
                let Some(with_tag) = value.as_str() else {
                    return Err(bad(format!("path item {index}: '{key}' must name a tag, not {}", value.show())));
                };
                return Ok((key.to_string(), with_tag.to_string()));
            }
            if entity != Entity::Node {
                return Err(bad(format!(
                    "'direction' joins nodes only; valid keywords for {}: {}",
                    entity.name(),
                    valid_names()
                )));
            }
            let n = match value {
                OValue::Number(n) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| bad("direction=n expects n to be an integer"))?;
            if n == 0 || n.unsigned_abs() as usize > index {
                return Err(bad(format!("direction={n} does not point to an earlier path item")));
            }
            let keyword = if n > 0 { "with_incoming" } else { "with_outgoing" };
            return Ok((keyword.to_string(), earlier[index - n.unsigned_abs() as usize].tag.clone()));
        }
        if let Some(keyword) = explicit.0 {
            let Some(with_tag) = explicit.1 else {
                return Err(bad(format!(
                    "path item {index}: 'joining_keyword' needs a 'joining_value' (the tag to join to)"
                )));
            };
            return Ok((keyword.to_string(), with_tag.to_string()));
        }
        let keyword = if entity == Entity::Node { "with_incoming" } else { "with_node" };
        Ok((keyword.to_string(), earlier[index - 1].tag.clone()))
    }

    /// The join of the item to an earlier one, checked against what the entities allow.
    fn join(
        &self,
        entity: Entity,
        tag: &str,
        explicit: (Option<&str>, Option<&str>),
        earlier: &[Vertex],
    ) -> QueryResult<(JoinKind, usize, String)> {
        let index = self.index;
        let valid = relationships(entity);
        let valid_names = || {
            let mut names: Vec<&str> = valid.iter().map(|(k, _)| k.keyword()).collect();
            if entity == Entity::Node {
                names.push("direction");
            }
            names.join(", ")
        };
        let (keyword, with_tag) = self.join_spec(entity, tag, explicit, earlier, &valid_names)?;
        let invalid = || {
            bad(format!(
                "'{keyword}' is not a valid keyword for joining a {}; valid keywords are: {}",
                entity.name(),
                valid_names()
            ))
        };
        let kind = JoinKind::parse(&keyword).ok_or_else(invalid)?;
        let Some(&(_, expected)) = valid.iter().find(|(k, _)| *k == kind) else {
            if entity == Entity::Link {
                return Err(bad("links cannot be joined to other entities: query them as the only path item"));
            }
            return Err(invalid());
        };
        let Some(with) = earlier.iter().position(|v| v.tag == with_tag) else {
            return Err(bad(format!(
                "path item {index} ('{tag}') joins {keyword} '{with_tag}', which is not the tag of an earlier path item"
            )));
        };
        if earlier[with].entity != expected {
            return Err(bad(format!(
                "path item {index} ('{tag}', a {}) joins {keyword} '{with_tag}', which is a {}; {keyword} needs a {}",
                entity.name(),
                earlier[with].entity.name(),
                expected.name()
            )));
        }
        Ok((kind, with, with_tag))
    }

    /// The tag of the edge to the earlier item.
    fn edge_tag(&self, with_tag: &str, tag: &str, tags: &Tags) -> QueryResult<String> {
        let edge_tag = match self.get("edge_tag") {
            None => format!("{with_tag}--{tag}"),
            Some(OValue::String(s)) => s.clone(),
            Some(other) => {
                return Err(bad(format!(
                    "path item {}: 'edge_tag' must be a string, not {}",
                    self.index,
                    other.show()
                )));
            }
        };
        if tags.get(&edge_tag).is_some() {
            return Err(bad(format!("the tag '{edge_tag}' is already in use")));
        }
        Ok(edge_tag)
    }
}

/// Reads one item of `path`: its entity and tag, its filters and projections (into `specs`),
/// and its join to an earlier item.
pub(super) fn parse_path_item(
    index: usize,
    item: &OValue,
    earlier: &[Vertex],
    tags: &mut Tags,
    specs: &mut Specs,
) -> QueryResult<Vertex> {
    let item = PathItem::new(index, item)?;
    let (entity, type_filter, types) = item.entity()?;
    let tag = item.tag(&types, entity, tags)?;
    tags.0.push((tag.clone(), Target::Vertex(index)));
    if let Some((key, spec)) = type_filter {
        specs.add_filters(&tag, &[(key.to_string(), spec)])?;
    }
    item.add_specs(&tag, "filters", "project", specs)?;
    let outer = item.flag("outerjoin", false)?;
    let explicit = item.explicit_join()?;
    if index == 0 {
        item.check_unjoined(explicit)?;
        return Ok(Vertex { tag, entity, join: None });
    }
    let (kind, with, with_tag) = item.join(entity, &tag, explicit, earlier)?;
    let edge_tag = item.edge_tag(&with_tag, &tag, tags)?;
    tags.0.push((edge_tag.clone(), Target::Edge(index)));
    item.add_specs(&edge_tag, "edge_filters", "edge_project", specs)?;
    Ok(Vertex { tag, entity, join: Some(Join { kind, with, edge_tag, outer }) })
}

/// Entity and type filter for an `entity_type` (or several), as aiida-core's
/// `_get_ormclass_from_str` and the node/group type filters decide them.
pub(super) fn classify(types: &[String], subclassing: bool, index: usize) -> QueryResult<(Entity, TypeFilter)> {
    let mut entity = None;
    let mut filters = Vec::new();
    for type_string in types {
        let lower = type_string.to_lowercase();
        let (this, filter) = if lower.starts_with("group.") {
            // AiiDA maps every `group.*` string to the base Group class, whose subclass filter
            // matches every group.
            let filter = if subclassing { op("like", "%") } else { op("==", "core") };
            (Entity::Group, Some(filter))
        } else if lower == "computer" {
            (Entity::Computer, None)
        } else if lower == "user" {
            (Entity::User, None)
        } else if lower == "link" {
            (Entity::Link, None)
        } else if lower == "comment" {
            (Entity::Comment, None)
        } else if lower == "log" {
            (Entity::Log, None)
        } else {
            if !valid_node_type(type_string) {
                return Err(bad(format!(
                    "path item {index}: the type string '{type_string}' is invalid: give a node type ending with a dot (e.g. data.core.structure.StructureData.), \"\" for any node, or one of group.core, computer, user, link, comment, log"
                )));
            }
            (Entity::Node, Some(node_type_filter(type_string, subclassing)))
        };
        if entity.is_some_and(|e| e != this) {
            return Err(bad(format!("path item {index}: the entity types in one list must all be of the same kind")));
        }
        entity = Some(this);
        if let Some(filter) = filter {
            filters.push(filter);
        }
    }
    let entity = entity.expect("at least one type");
    let key = match entity {
        Entity::Node => "node_type",
        Entity::Group => "type_string",
        _ => return Ok((entity, None)),
    };
    let spec = if filters.len() == 1 {
        filters.pop().expect("one filter")
    } else {
        OValue::Object(vec![("or".into(), OValue::Array(filters))])
    };
    Ok((entity, Some((key, spec))))
}

pub(super) fn op(operator: &str, value: &str) -> OValue {
    OValue::Object(vec![(operator.to_string(), OValue::String(value.to_string()))])
}

pub(super) fn valid_node_type(type_string: &str) -> bool {
    type_string.is_empty() || (type_string.matches('.').count() != 1 && type_string.ends_with('.'))
}

pub(super) fn node_type_filter(type_string: &str, subclassing: bool) -> OValue {
    // AbstractCode's entry point is younger than the legacy Code's: AiiDA widens the filter so
    // that all codes match.
    let value = if type_string == "data.core.code.abstract.AbstractCode." { "data.core.code." } else { type_string };
    if !subclassing {
        return op("==", value);
    }
    let query_type =
        if value.is_empty() { String::new() } else { format!("{}.", value.rsplitn(3, '.').last().unwrap_or(value)) };
    op("like", &format!("{}%", crate::storage::db::sql::escape_like(&query_type)))
}

pub(super) fn unique_tag(types: &[String], entity: Entity, tags: &Tags) -> String {
    let base: Vec<String> = types
        .iter()
        .map(|t| {
            let classifier = match entity {
                Entity::Group => "group.core".to_string(),
                Entity::Node => t.clone(),
                other => other.name().to_string(),
            };
            let last = classifier.trim_end_matches('.').rsplit('.').next().unwrap_or("").to_string();
            if last.is_empty() { "node".to_string() } else { last }
        })
        .collect();
    let base = base.join("-");
    (1..).map(|i| format!("{base}_{i}")).find(|tag| tags.get(tag).is_none()).expect("some suffix is free")
}
