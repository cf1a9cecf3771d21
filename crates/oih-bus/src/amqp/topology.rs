//! The topology this bus declared, kept so it can be declared again on a new connection (a
//! restarted broker may have lost non-mirrored or freshly created objects), and the one place
//! that turns a topology change into AMQP methods, for the first time and for the replay.

use std::collections::{BTreeMap, BTreeSet};

use lapin::Channel;
use lapin::options::{
    ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, ExchangeUnbindOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{FieldTable, ShortString};

use super::convert::{queue_arguments, short};
use crate::{ExchangeKind, QueueOptions, Result};

/// One change to the broker's topology.
#[derive(Debug, Clone)]
pub(super) enum Op {
    DeclareExchange(ShortString, ExchangeKind),
    DeleteExchange(ShortString),
    DeclareQueue(ShortString, QueueOptions, FieldTable),
    DeleteQueue(ShortString),
    BindQueue(Binding),
    UnbindQueue(Binding),
    /// `Binding::target` is the destination exchange.
    BindExchange(Binding),
    UnbindExchange(Binding),
}

/// `target` (a queue, or the destination exchange) receives what `source` routes with
/// `pattern`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Binding {
    pub target: ShortString,
    pub source: ShortString,
    pub pattern: ShortString,
}

impl Binding {
    pub fn new(target: &str, source: &str, pattern: &str) -> Result<Self> {
        Ok(Self {
            target: short(target, "a queue or exchange name")?,
            source: short(source, "an exchange name")?,
            pattern: short(pattern, "a binding pattern")?,
        })
    }
}

impl Op {
    pub fn declare_queue(name: &str, opts: &QueueOptions) -> Result<Self> {
        Ok(Self::DeclareQueue(
            short(name, "a queue name")?,
            opts.clone(),
            queue_arguments(opts)?,
        ))
    }

    /// Sends this change on `channel`. Returns the message count for `DeleteQueue`, else 0.
    pub async fn run(&self, channel: &Channel) -> lapin::Result<u64> {
        match self {
            Op::DeclareExchange(name, kind) => {
                let kind = match kind {
                    ExchangeKind::Direct => lapin::ExchangeKind::Direct,
                    ExchangeKind::Topic => lapin::ExchangeKind::Topic,
                    ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
                };
                let opts = ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                };
                channel
                    .exchange_declare(name.clone(), kind, opts, FieldTable::default())
                    .await?;
            }
            Op::DeleteExchange(name) => {
                channel
                    .exchange_delete(name.clone(), ExchangeDeleteOptions::default())
                    .await?;
            }
            Op::DeclareQueue(name, _, args) => {
                let opts = QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                };
                channel
                    .queue_declare(name.clone(), opts, args.clone())
                    .await?;
            }
            Op::DeleteQueue(name) => {
                let count = channel
                    .queue_delete(name.clone(), QueueDeleteOptions::default())
                    .await?;
                return Ok(u64::from(count));
            }
            Op::BindQueue(b) => {
                channel
                    .queue_bind(
                        b.target.clone(),
                        b.source.clone(),
                        b.pattern.clone(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            Op::UnbindQueue(b) => {
                channel
                    .queue_unbind(
                        b.target.clone(),
                        b.source.clone(),
                        b.pattern.clone(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            Op::BindExchange(b) => {
                channel
                    .exchange_bind(
                        b.target.clone(),
                        b.source.clone(),
                        b.pattern.clone(),
                        ExchangeBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
            Op::UnbindExchange(b) => {
                channel
                    .exchange_unbind(
                        b.target.clone(),
                        b.source.clone(),
                        b.pattern.clone(),
                        ExchangeUnbindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(0)
    }
}

/// What to declare again after a reconnect. Deletions remove objects and every binding that
/// mentions them, as the broker does.
#[derive(Debug, Default)]
pub(super) struct Topology {
    exchanges: BTreeMap<ShortString, ExchangeKind>,
    queues: BTreeMap<ShortString, (QueueOptions, FieldTable)>,
    queue_bindings: BTreeSet<Binding>,
    exchange_bindings: BTreeSet<Binding>,
}

impl Topology {
    /// Records a change the broker accepted.
    pub fn record(&mut self, op: &Op) {
        match op {
            Op::DeclareExchange(name, kind) => {
                self.exchanges.insert(name.clone(), *kind);
            }
            Op::DeleteExchange(name) => {
                self.exchanges.remove(name);
                self.queue_bindings.retain(|b| b.source != *name);
                self.exchange_bindings
                    .retain(|b| b.source != *name && b.target != *name);
            }
            Op::DeclareQueue(name, opts, args) => {
                self.queues
                    .insert(name.clone(), (opts.clone(), args.clone()));
            }
            Op::DeleteQueue(name) => {
                self.queues.remove(name);
                self.queue_bindings.retain(|b| b.target != *name);
            }
            Op::BindQueue(b) => {
                self.queue_bindings.insert(b.clone());
            }
            Op::UnbindQueue(b) => {
                self.queue_bindings.remove(b);
            }
            Op::BindExchange(b) => {
                self.exchange_bindings.insert(b.clone());
            }
            Op::UnbindExchange(b) => {
                self.exchange_bindings.remove(b);
            }
        }
    }

    /// The declarations that rebuild this topology, objects before the bindings between them.
    pub fn replay(&self) -> Vec<Op> {
        let exchanges = self
            .exchanges
            .iter()
            .map(|(name, kind)| Op::DeclareExchange(name.clone(), *kind));
        let queues = self
            .queues
            .iter()
            .map(|(name, (opts, args))| Op::DeclareQueue(name.clone(), opts.clone(), args.clone()));
        let exchange_bindings = self.exchange_bindings.iter().cloned().map(Op::BindExchange);
        let queue_bindings = self.queue_bindings.iter().cloned().map(Op::BindQueue);
        exchanges
            .chain(queues)
            .chain(exchange_bindings)
            .chain(queue_bindings)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::DeclareExchange(n, _) => format!("x:{n}"),
                Op::DeclareQueue(n, ..) => format!("q:{n}"),
                Op::BindExchange(b) => format!("xb:{}<-{}", b.target, b.source),
                Op::BindQueue(b) => format!("qb:{}<-{}", b.target, b.source),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn replay_orders_objects_before_bindings_and_forgets_deleted_ones() -> Result<()> {
        let mut t = Topology::default();
        let ops = [
            Op::BindQueue(Binding::new("q1", "flow", "#")?),
            Op::DeclareQueue("q1".into(), QueueOptions::default(), FieldTable::default()),
            Op::DeclareExchange("flow".into(), ExchangeKind::Topic),
            Op::DeclareExchange("collector".into(), ExchangeKind::Topic),
            Op::BindExchange(Binding::new("collector", "flow", "#")?),
            Op::DeclareQueue("q2".into(), QueueOptions::default(), FieldTable::default()),
            Op::BindQueue(Binding::new("q2", "collector", "#.snapshot")?),
        ];
        for op in &ops {
            t.record(op);
        }
        assert_eq!(
            names(&t.replay()),
            [
                "x:collector",
                "x:flow",
                "q:q1",
                "q:q2",
                "xb:collector<-flow",
                "qb:q1<-flow",
                "qb:q2<-collector"
            ]
        );
        t.record(&Op::DeleteExchange("flow".into()));
        t.record(&Op::DeleteQueue("q2".into()));
        assert_eq!(names(&t.replay()), ["x:collector", "q:q1"]);
        Ok(())
    }
}
