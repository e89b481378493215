//! What this kernel lets the engine do for faults, probed at run time:
//! `tc netem` needs the `sch_netem` module, Swarm's VIPs need IPVS. A
//! missing one is reported, never faked (latency stays in prodhome's proxy).

use std::path::Path;

use crate::Engine;

/// Kernel features prodhome would use through the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// `sch_netem` loaded or loadable: `tc netem` delay/loss would work.
    pub netem: bool,
    /// IPVS present: Swarm's virtual IPs and routing mesh would answer.
    pub ipvs: bool,
    /// The kernel release the probe read.
    pub kernel: String,
}

impl Capabilities {
    /// One line per unsupported feature, saying what prodhome does instead.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.netem {
            out.push(format!(
                "no sch_netem in kernel {}: network delay and loss go through prodhome's proxy, not tc netem",
                self.kernel
            ));
        }
        if !self.ipvs {
            out.push(format!(
                "no IPVS in kernel {}: Swarm virtual IPs and the routing mesh do not answer (use endpoint_mode dnsrr and host ports)",
                self.kernel
            ));
        }
        out
    }
}

impl Engine {
    /// Probes the kernel the engine runs on (the local one: the socket is local).
    pub fn capabilities(&self) -> Capabilities {
        probe_kernel()
    }
}

/// Reads `/proc` and `/lib/modules` for the two modules.
pub(crate) fn probe_kernel() -> Capabilities {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_owned();
    Capabilities {
        netem: module_available(&kernel, "sch_netem", "kernel/net/sched"),
        ipvs: Path::new("/proc/net/ip_vs").exists()
            || module_available(&kernel, "ip_vs", "kernel/net/netfilter/ipvs"),
        kernel,
    }
}

/// Loaded (`/sys/module/NAME`), or a module file in `/lib/modules/<release>/DIR`.
fn module_available(kernel: &str, name: &str, dir: &str) -> bool {
    if Path::new("/sys/module").join(name).exists() {
        return true;
    }
    let dir = Path::new("/lib/modules").join(kernel).join(dir);
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with(&format!("{name}.ko")))
    })
}
