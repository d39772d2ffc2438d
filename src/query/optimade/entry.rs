//! One StructureData as an OPTIMADE `structures` entry: the properties derived once from its
//! attributes (with `model::structure`), what the filter reads of them ([`Prop`]) and their JSON.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::model::linalg::{Mat3, Vec3};
use crate::model::structure::{Composition, FormulaMode, Structure, StructureError};

/// The type of a property's values, as `info/structures` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropType {
    String,
    Integer,
    Float,
    Timestamp,
    /// A list of the given item type (`None`: of lists or dictionaries, not queryable).
    List(Option<ItemType>),
}

/// The type of the items of a list property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    String,
    Integer,
    Float,
}

impl PropType {
    /// The name `info/structures` gives the type.
    pub fn name(self) -> &'static str {
        match self {
            PropType::String => "string",
            PropType::Integer => "integer",
            PropType::Float => "float",
            PropType::Timestamp => "timestamp",
            PropType::List(_) => "list",
        }
    }
}

/// A property of the `structures` entries: what `info/structures` says of it and how the
/// filter and `sort` may use it.
#[derive(Debug, Clone, Copy)]
pub struct PropertyDef {
    pub name: &'static str,
    pub kind: PropType,
    /// Whether filters may name it (lists of lists and of dictionaries may not: 501).
    pub queryable: bool,
    /// Whether `sort` may name it (the scalars).
    pub sortable: bool,
    pub unit: Option<&'static str>,
    pub description: &'static str,
}

const fn def(name: &'static str, kind: PropType, description: &'static str) -> PropertyDef {
    let queryable = !matches!(kind, PropType::List(None));
    let sortable = !matches!(kind, PropType::List(_));
    PropertyDef { name, kind, queryable, sortable, unit: None, description }
}

const STRINGS: PropType = PropType::List(Some(ItemType::String));

/// Every property of a `structures` entry, in the order entries list them.
pub const PROPERTIES: &[PropertyDef] = &[
    def("id", PropType::String, "The UUID of the StructureData node."),
    def("type", PropType::String, "The entry type: always \"structures\"."),
    def("immutable_id", PropType::String, "The UUID of the StructureData node, which never changes."),
    def("last_modified", PropType::Timestamp, "When the node was last modified (its mtime)."),
    def("elements", STRINGS, "The chemical symbols of the elements on the sites, alphabetically."),
    def("nelements", PropType::Integer, "The number of different elements."),
    def(
        "elements_ratios",
        PropType::List(Some(ItemType::Float)),
        "The occupation-weighted share of each element of `elements`.",
    ),
    def("chemical_formula_descriptive", PropType::String, "AiiDA's Hill formula of the structure (get_formula())."),
    def("chemical_formula_reduced", PropType::String, "Alphabetical formula with reduced proportions."),
    def("chemical_formula_hill", PropType::String, "Hill formula with the proportions of the cell."),
    def("chemical_formula_anonymous", PropType::String, "Anonymous formula of the reduced proportions."),
    def(
        "dimension_types",
        PropType::List(Some(ItemType::Integer)),
        "Periodicity of each lattice vector (1 periodic, 0 not).",
    ),
    def("nperiodic_dimensions", PropType::Integer, "The number of periodic directions."),
    PropertyDef { unit: Some("Å"), ..def("lattice_vectors", PropType::List(None), "The three cell vectors.") },
    PropertyDef {
        unit: Some("Å"),
        ..def("cartesian_site_positions", PropType::List(None), "The Cartesian positions of the sites.")
    },
    def("nsites", PropType::Integer, "The number of sites."),
    def("species_at_sites", STRINGS, "The name of the species (AiiDA kind) of each site."),
    def("species", PropType::List(None), "The species (AiiDA kinds) that the sites use."),
    def("structure_features", STRINGS, "\"disorder\" when a species is an alloy or has vacancies."),
    def("_aiida_label", PropType::String, "The label of the node."),
    def("_aiida_ctime", PropType::Timestamp, "When the node was created."),
    def("_aiida_creator", PropType::String, "The UUID of the process that created the node, if one did."),
];

/// The property called `name`.
pub fn property(name: &str) -> Option<&'static PropertyDef> {
    PROPERTIES.iter().find(|p| p.name == name)
}

/// A property's value as the filter reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prop<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
    Time(DateTime<Utc>),
    Strs(&'a [String]),
    Ints(&'a [i64]),
    Floats(&'a [f64]),
    /// A value filters cannot reach (lists of lists or dictionaries).
    Opaque,
}

/// The node columns one entry is made of.
#[derive(Debug, Clone)]
pub struct NodeColumns {
    pub pk: i64,
    pub uuid: String,
    pub label: String,
    pub ctime: Option<DateTime<Utc>>,
    pub mtime: Option<DateTime<Utc>>,
    /// The UUID of the process with a `create` link to the node.
    pub creator: Option<String>,
}

/// One `structures` entry, its properties computed once.
#[derive(Debug, Clone)]
pub struct Entry {
    pub node: NodeColumns,
    pub composition: Composition,
    pub nelements: i64,
    pub formula_descriptive: String,
    pub dimension_types: Vec<i64>,
    pub nperiodic_dimensions: i64,
    pub lattice_vectors: Mat3,
    pub positions: Vec<Vec3>,
    pub nsites: i64,
    pub species_at_sites: Vec<String>,
    pub structure_features: Vec<String>,
    /// Bit `n` set for the element of atomic number `n`, when every element has one (for the
    /// filter's fast path on `elements HAS ALL/ANY/ONLY`).
    pub element_mask: Option<u128>,
}

/// The bits of `symbols`' atomic numbers, `None` if one is not an element.
pub fn element_mask<'a>(symbols: impl IntoIterator<Item = &'a str>) -> Option<u128> {
    symbols.into_iter().try_fold(0u128, |mask, s| match crate::model::structure::atomic_number(s) {
        Some(n) if n > 0 && n < 128 => Some(mask | (1u128 << n)),
        _ => None,
    })
}

impl Entry {
    /// The entry of a StructureData from its columns and the JSON text of its attributes.
    pub fn derive(node: NodeColumns, attributes: &str) -> Result<Entry, StructureError> {
        let s = Structure::from_json_text(attributes)?;
        let composition = s.composition()?;
        let dimension_types: Vec<i64> = s.pbc.iter().map(|&p| i64::from(p)).collect();
        let structure_features = if composition.disorder { vec!["disorder".to_string()] } else { Vec::new() };
        Ok(Entry {
            element_mask: element_mask(composition.elements.iter().map(String::as_str)),
            nelements: composition.elements.len() as i64,
            formula_descriptive: s.formula(FormulaMode::Hill)?,
            nperiodic_dimensions: dimension_types.iter().sum(),
            dimension_types,
            lattice_vectors: s.cell,
            positions: s.sites.iter().map(|site| site.position).collect(),
            nsites: s.sites.len() as i64,
            species_at_sites: s.sites.iter().map(|site| site.kind_name.clone()).collect(),
            structure_features,
            composition,
            node,
        })
    }

    /// What the filter reads of property `name` (`None`: no such property).
    pub fn get(&self, name: &str) -> Option<Prop<'_>> {
        let c = &self.composition;
        let time = |t: Option<DateTime<Utc>>| t.map_or(Prop::Null, Prop::Time);
        Some(match name {
            "id" | "immutable_id" => Prop::Str(&self.node.uuid),
            "type" => Prop::Str("structures"),
            "last_modified" => time(self.node.mtime),
            "elements" => Prop::Strs(&c.elements),
            "nelements" => Prop::Int(self.nelements),
            "elements_ratios" => Prop::Floats(&c.elements_ratios),
            "chemical_formula_descriptive" => Prop::Str(&self.formula_descriptive),
            "chemical_formula_reduced" => Prop::Str(&c.formula_reduced),
            "chemical_formula_hill" => Prop::Str(&c.formula_hill),
            "chemical_formula_anonymous" => Prop::Str(&c.formula_anonymous),
            "dimension_types" => Prop::Ints(&self.dimension_types),
            "nperiodic_dimensions" => Prop::Int(self.nperiodic_dimensions),
            "nsites" => Prop::Int(self.nsites),
            "species_at_sites" => Prop::Strs(&self.species_at_sites),
            "structure_features" => Prop::Strs(&self.structure_features),
            "lattice_vectors" | "cartesian_site_positions" | "species" => Prop::Opaque,
            "_aiida_label" => Prop::Str(&self.node.label),
            "_aiida_ctime" => time(self.node.ctime),
            "_aiida_creator" => self.node.creator.as_deref().map_or(Prop::Null, Prop::Str),
            _ => return None,
        })
    }

    /// The JSON of property `name` (`null` when unknown or not a property).
    pub fn json(&self, name: &str) -> Value {
        match name {
            "lattice_vectors" => json!(self.lattice_vectors),
            "cartesian_site_positions" => json!(self.positions),
            "species" => Value::Array(
                self.composition
                    .species
                    .iter()
                    .map(|s| {
                        let mut m = Map::new();
                        m.insert("name".into(), json!(s.name));
                        m.insert("chemical_symbols".into(), json!(s.chemical_symbols));
                        m.insert("concentration".into(), json!(s.concentration));
                        if let Some(mass) = &s.mass {
                            m.insert("mass".into(), json!(mass));
                        }
                        Value::Object(m)
                    })
                    .collect(),
            ),
            _ => match self.get(name) {
                None | Some(Prop::Null) | Some(Prop::Opaque) => Value::Null,
                Some(Prop::Str(s)) => json!(s),
                Some(Prop::Int(n)) => json!(n),
                Some(Prop::Float(x)) => json!(x),
                Some(Prop::Time(t)) => json!(timestamp_text(t)),
                Some(Prop::Strs(v)) => json!(v),
                Some(Prop::Ints(v)) => json!(v),
                Some(Prop::Floats(v)) => json!(v),
            },
        }
    }
}

/// An OPTIMADE timestamp: RFC 3339 in UTC, with microseconds.
pub fn timestamp_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
