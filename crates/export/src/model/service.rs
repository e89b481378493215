//! A lab service as a container: its image, arguments, dependencies and
//! environment, `${...}` references resolved for the engine's network.

use lab::{DependsOn, ProbeCheckPlan};

use super::{Inputs, PG_PORT, Service, Wait};
use crate::ExportError;

pub(super) fn service(inputs: &Inputs<'_>, s: &lab::ServicePlan) -> Result<Service, ExportError> {
    let image = inputs
        .images
        .services
        .get(&s.name)
        .cloned()
        .ok_or_else(|| ExportError::NoImage(s.name.clone()))?;
    let mut env = Vec::new();
    for (key, value) in &s.env {
        env.push((key.clone(), resolve(inputs, &s.name, key, value)?));
    }
    let health = match s.ready.as_ref().map(|p| &p.check) {
        Some(ProbeCheckPlan::Exec(argv)) => Some(argv.clone()),
        _ => None,
    };
    let depends_on = s
        .depends_on
        .iter()
        .map(|(name, cond)| {
            let is_node = inputs.plan.node(name).is_some();
            let target_has_health = is_node
                || inputs.plan.services.iter().any(|o| {
                    &o.name == name
                        && matches!(o.ready.as_ref().map(|p| &p.check), Some(ProbeCheckPlan::Exec(_)))
                });
            let wait = match cond {
                DependsOn::Ready | DependsOn::Healthy if target_has_health => Wait::Healthy,
                _ => Wait::Started,
            };
            (name.clone(), wait)
        })
        .collect();
    Ok(Service {
        name: s.name.clone(),
        image,
        args: s.command[1..].to_vec(),
        env,
        depends_on,
        health,
        restart: s.restart,
        max_restarts: s.max_restarts,
    })
}

/// One env value with its `${...}` references resolved for a container on
/// the lab's network: a node is its service name on port [`PG_PORT`].
fn resolve(inputs: &Inputs<'_>, service: &str, key: &str, value: &str) -> Result<String, ExportError> {
    let bad = |why: String| ExportError::Reference {
        service: service.into(),
        key: key.into(),
        why,
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| bad("unclosed ${".into()))?;
        let reference = &after[..end];
        let parts: Vec<&str> = reference.split('.').collect();
        let text = match parts.as_slice() {
            ["postgres", node, attr] => {
                let (superuser, _) = inputs
                    .credentials
                    .get(*node)
                    .ok_or_else(|| bad(format!("no node {node}")))?;
                let password = superuser.expose();
                match *attr {
                    "url" => format!("postgresql://postgres:{password}@{node}:{PG_PORT}/postgres"),
                    "host" => node.to_string(),
                    "port" => PG_PORT.to_string(),
                    "user" => "postgres".into(),
                    "password" => password.to_string(),
                    "database" => "postgres".into(),
                    other => return Err(bad(format!("unknown attribute {other}"))),
                }
            }
            ["secret", name] => inputs
                .named_secrets
                .get(*name)
                .ok_or_else(|| bad(format!("no secret {name}")))?
                .expose()
                .to_string(),
            _ => return Err(bad(format!("unknown reference ${{{reference}}}"))),
        };
        out.push_str(&text);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `KEY=value` lines, as compose's `env_file` reads them.
pub(super) fn env_file(env: &[(String, String)]) -> String {
    env.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}
