//! [`Sampler`]: every node's collectors, one cycle at a time.

use model::{Event, Point};

use crate::node::NodeSampler;
use crate::options::{Error, SamplerOptions, check};

/// The sampler driven one cycle at a time (tests, benchmarks). [`run`](crate::run)
/// drives the same per-node samplers, each on its own tick.
pub struct Sampler {
    pub(crate) nodes: Vec<NodeSampler>,
}

impl Sampler {
    /// Checks the options; connects lazily, in the first cycle.
    pub fn new(opts: SamplerOptions) -> Result<Sampler, Error> {
        check(&opts)?;
        let deadline = opts.deadline();
        let nodes = opts
            .nodes
            .into_iter()
            .map(|n| {
                NodeSampler::new(
                    n,
                    &opts.replications,
                    &opts.custom,
                    opts.statement_timeout,
                    deadline,
                )
            })
            .collect();
        Ok(Sampler { nodes })
    }

    /// One cycle of every collector on every node, concurrently.
    pub async fn sample_once(&mut self) -> Vec<Point> {
        let ts_ns = model::now_ns();
        let cycles = futures_util::future::join_all(self.nodes.iter_mut().map(|n| n.sample(ts_ns))).await;
        cycles.into_iter().flat_map(|c| c.points).collect()
    }

    /// Events since the last call (collectors that started failing).
    pub fn take_events(&mut self) -> Vec<Event> {
        self.nodes.iter_mut().flat_map(|n| n.take_events()).collect()
    }
}
