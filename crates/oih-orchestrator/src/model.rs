//! The flow as the orchestrator reads it from `flow.starting` (the flow repository's formatted
//! flow plus `startedBy`), and the graph questions it asks: which nodes start an execution,
//! where a step's output goes.

use oih_core::Owner;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    pub id: String,
    pub graph: Graph,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub owners: Vec<Owner>,
    #[serde(default)]
    pub started_by: Option<String>,
    /// The version of the graph that runs (`GET /flows/{id}/versions/{n}` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_version: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub id: String,
    pub component_id: String,
    #[serde(default)]
    pub function: String,
    #[serde(default)]
    pub fields: Value,
    /// The secret the step's component runs with (OIH's `credentials_id`).
    #[serde(default, rename = "credentials_id")]
    pub credentials_id: Option<String>,
    #[serde(default)]
    pub node_settings: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Edge {
    pub source: String,
    pub target: String,
}

/// Largest `nodeSettings.prefetch` accepted.
pub const MAX_PREFETCH: u64 = 1_000;

impl Node {
    /// The node's own prefetch (`nodeSettings.prefetch`, our extension), if set: how many
    /// messages the step takes at once, overriding its driver's setting.
    pub fn prefetch(&self) -> Result<Option<u16>, String> {
        match self.node_settings.get("prefetch") {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .filter(|n| (1..=MAX_PREFETCH).contains(n))
                .and_then(|n| u16::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "node {}: nodeSettings.prefetch must be an integer from 1 to {MAX_PREFETCH}",
                        self.id
                    )
                }),
        }
    }
}

impl Graph {
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Where an execution begins: every node no edge leads to (OIH takes the first such node;
    /// a graph with several is started at each).
    pub fn first_nodes(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| !self.edges.iter().any(|e| e.target == n.id))
            .map(|n| n.id.as_str())
            .collect()
    }

    /// The targets of `source`'s outgoing edges, in edge order.
    pub fn targets_of(&self, source: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|e| e.source == source)
            .map(|e| e.target.as_str())
            .collect()
    }

    /// Why the graph cannot run: an edge naming an unknown node, or no node to start at.
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = self
            .edges
            .iter()
            .find(|e| self.node(&e.source).is_none() || self.node(&e.target).is_none())
        {
            return Err(format!(
                "edge {} -> {} names a node that does not exist",
                e.source, e.target
            ));
        }
        if self.first_nodes().is_empty() {
            return Err("the graph has no node without incoming edges to start at".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn graph(value: Value) -> Graph {
        serde_json::from_value(value).expect("graph")
    }

    #[test]
    fn first_nodes_and_targets_follow_the_edges() {
        let g = graph(json!({
            "nodes": [{"id": "a", "componentId": "c"}, {"id": "b", "componentId": "c"}, {"id": "c", "componentId": "c"}],
            "edges": [{"source": "a", "target": "b"}, {"source": "a", "target": "c"}],
        }));
        assert_eq!(g.first_nodes(), ["a"]);
        assert_eq!(g.targets_of("a"), ["b", "c"]);
        assert!(g.targets_of("b").is_empty());
        assert_eq!(g.check(), Ok(()));
    }

    #[test]
    fn a_node_may_set_its_own_prefetch() {
        let node = |settings: Value| -> Node {
            serde_json::from_value(json!({"id": "a", "componentId": "c", "nodeSettings": settings}))
                .expect("node")
        };
        assert_eq!(node(json!({})).prefetch(), Ok(None));
        assert_eq!(node(json!({"prefetch": 8})).prefetch(), Ok(Some(8)));
        for bad in [json!(0), json!(1001), json!("8"), json!(2.5), json!(-1)] {
            let err = node(json!({"prefetch": bad})).prefetch().expect_err("bad");
            assert!(err.contains("nodeSettings.prefetch"), "{err}");
        }
    }

    #[test]
    fn cycles_and_dangling_edges_are_rejected() {
        let cycle = graph(json!({
            "nodes": [{"id": "a", "componentId": "c"}, {"id": "b", "componentId": "c"}],
            "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
        }));
        assert!(cycle.check().is_err());
        let dangling = graph(json!({
            "nodes": [{"id": "a", "componentId": "c"}],
            "edges": [{"source": "a", "target": "zz"}],
        }));
        assert!(dangling.check().expect_err("dangling").contains("zz"));
    }
}
