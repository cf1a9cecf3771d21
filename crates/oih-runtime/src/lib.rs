//! Step execution for oih (architecture.md §4/§5): the builtin components, compiled into the hub
//! and run in process. The orchestrator (next) drives them through [`BuiltinComponent`] and
//! [`Step`]; the Ferryman protocol and the process and Kubernetes drivers come later and speak
//! the same [`StepMessage`] / [`Emit`] vocabulary.
//!
//! Life of a builtin step: when a flow starts, the orchestrator looks the node's component up in
//! the [`Catalogue`] (by `distribution.name`) and calls [`BuiltinComponent::prepare`] with the
//! node's `fields`: the fields are checked against the component's JSON Schema and every
//! JSONata expression is parsed once. A [`ConfigError`] names the failing field, so the flow can
//! fail with a useful message. For every input message it then calls [`run_step`], which runs
//! [`Step::process`] and adds what Ferryman adds around a component's `process()`: an `error`
//! emit when processing failed and exactly one `end`.

mod builtin;
mod component;
mod expr;
mod message;
mod schema;

pub use builtin::{Catalogue, catalogue};
pub use component::{
    BuiltinComponent, ConfigError, Descriptor, Function, Step, StepContext, StepError, run_step,
};
pub use message::{Emit, StepHeaders, StepMessage, WebhookRequest};
