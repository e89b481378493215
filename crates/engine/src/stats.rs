//! The engine's stats stream as [`model::Point`]s: measurement `container`,
//! tags `{lab, node}`, fields `cpu_percent` (float) and `mem_bytes`,
//! `mem_limit_bytes`, `net_rx_bytes`, `net_tx_bytes`, `blk_read_bytes`,
//! `blk_write_bytes` (all integers, always present, so the types never change
//! between points).

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::{Stream, StreamExt};
use model::Point;

use crate::lab::container_name;
use crate::{Engine, EngineError};

/// The measurement name.
pub const MEASUREMENT: &str = "container";

impl Engine {
    /// Points for the node's container, one per engine sample (about 1 s
    /// apart) until the container stops or the stream is dropped.
    pub fn stats(&self, lab: &str, node: &str) -> impl Stream<Item = Result<Point, EngineError>> + use<> {
        let name = container_name(lab, node);
        let options = StatsOptionsBuilder::new().stream(true).build();
        let (lab, node) = (lab.to_owned(), node.to_owned());
        self.docker.stats(&name, Some(options)).map(move |item| {
            item.map(|stats| to_point(&stats, &lab, &node, model::now_ns()))
                .map_err(EngineError::api(format!("stream the stats of {name}")))
        })
    }
}

/// One stats sample as a point stamped `ts_ns`.
pub fn to_point(stats: &ContainerStatsResponse, lab: &str, node: &str, ts_ns: i64) -> Point {
    let memory = stats.memory_stats.clone().unwrap_or_default();
    let (rx, tx) = stats
        .networks
        .iter()
        .flatten()
        .fold((0u64, 0u64), |(rx, tx), (_, net)| {
            (rx + net.rx_bytes.unwrap_or(0), tx + net.tx_bytes.unwrap_or(0))
        });
    let (read, write) = block_io(stats);
    Point::new(MEASUREMENT, ts_ns)
        .tag("lab", lab)
        .tag("node", node)
        .float("cpu_percent", cpu_percent(stats))
        .int("mem_bytes", saturate(memory.usage.unwrap_or(0)))
        .int("mem_limit_bytes", saturate(memory.limit.unwrap_or(0)))
        .int("net_rx_bytes", saturate(rx))
        .int("net_tx_bytes", saturate(tx))
        .int("blk_read_bytes", saturate(read))
        .int("blk_write_bytes", saturate(write))
}

/// CPU use since the previous sample, as `docker stats` computes it: the
/// container's share of the host's CPU time times the CPUs online, in percent.
fn cpu_percent(stats: &ContainerStatsResponse) -> f64 {
    let usage = |s: &Option<bollard::models::ContainerCpuStats>| {
        let s = s.clone().unwrap_or_default();
        let total = s.cpu_usage.as_ref().and_then(|u| u.total_usage).unwrap_or(0);
        (total, s.system_cpu_usage.unwrap_or(0), s.online_cpus.unwrap_or(0))
    };
    let (cpu, system, online) = usage(&stats.cpu_stats);
    let (pre_cpu, pre_system, _) = usage(&stats.precpu_stats);
    let cpu_delta = cpu.saturating_sub(pre_cpu) as f64;
    let system_delta = system.saturating_sub(pre_system) as f64;
    if system_delta <= 0.0 || pre_system == 0 {
        return 0.0;
    }
    let cpus = if online > 0 { online as f64 } else { 1.0 };
    cpu_delta / system_delta * cpus * 100.0
}

/// Bytes read and written (cgroup v1 `io_service_bytes_recursive`).
fn block_io(stats: &ContainerStatsResponse) -> (u64, u64) {
    let entries = stats
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref());
    entries
        .into_iter()
        .flatten()
        .fold((0, 0), |(read, write), entry| {
            let value = entry.value.unwrap_or(0);
            match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => (read + value, write),
                Some("write") => (read, write + value),
                _ => (read, write),
            }
        })
}

fn saturate(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::FieldValue;

    #[test]
    fn an_empty_sample_still_has_every_field_with_its_type() {
        let point = to_point(&ContainerStatsResponse::default(), "lab1", "pub", 7);
        assert_eq!(point.measurement, "container");
        assert_eq!(point.tags["lab"], "lab1");
        assert_eq!(point.tags["node"], "pub");
        assert_eq!(point.fields["cpu_percent"], FieldValue::F64(0.0));
        for field in [
            "mem_bytes",
            "mem_limit_bytes",
            "net_rx_bytes",
            "net_tx_bytes",
            "blk_read_bytes",
            "blk_write_bytes",
        ] {
            assert_eq!(point.fields[field], FieldValue::I64(0), "{field}");
        }
    }
}
