//! The API's route table (method, path, the role it needs, what it does) and the OpenAPI
//! 3.1 description made from it, served at `/api/v1/openapi.json`.

use serde_json::json;

/// Every route under `/api/v1`: method, path, the role it needs, what it does. The served
/// OpenAPI description is made from this table.
pub const ROUTES: &[(&str, &str, &str, &str)] = &[
    (
        "get",
        "/playbooks",
        "viewer",
        "The loaded playbooks: schedule, next and last fire, errors",
    ),
    ("get", "/runs", "viewer", "The newest runs (?limit=N)"),
    (
        "post",
        "/runs",
        "operator",
        "Start a run: {playbook} or {yaml}, time_scale, dry_run",
    ),
    (
        "get",
        "/runs/{id}",
        "viewer",
        "One run, with its live status while it runs here",
    ),
    (
        "get",
        "/runs/{id}/report",
        "viewer",
        "The run's report (?format=json|md|junit)",
    ),
    (
        "get",
        "/runs/{id}/events",
        "viewer",
        "The run's live status as server-sent events",
    ),
    (
        "post",
        "/runs/{id}/abort",
        "operator",
        "Abort a run of this daemon (its faults are reverted)",
    ),
    (
        "get",
        "/fires",
        "viewer",
        "What became of each nominal time (?playbook=NAME&limit=N)",
    ),
    (
        "get",
        "/audit",
        "viewer",
        "Every mutating call, newest first",
    ),
    ("get", "/halt", "viewer", "The halt in force, or null"),
    (
        "post",
        "/halt",
        "admin",
        "Halt every daemon on the store: {reason}",
    ),
    ("post", "/resume", "admin", "Lift the halt"),
    ("get", "/openapi.json", "viewer", "This description"),
];

/// The OpenAPI 3.1 description of [`ROUTES`].
pub fn openapi() -> serde_json::Value {
    let mut paths = serde_json::Map::new();
    for (method, path, role, summary) in ROUTES {
        let entry = paths
            .entry(format!("/api/v1{path}"))
            .or_insert_with(|| json!({}));
        let params: Vec<serde_json::Value> = path
            .contains("{id}")
            .then(|| json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}))
            .into_iter()
            .collect();
        entry[*method] = json!({
            "summary": summary,
            "description": format!("Needs the {role} role."),
            "parameters": params,
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "OK"},
                "401": {"description": "No valid bearer token"},
                "403": {"description": format!("The token's role is below {role}")},
            },
        });
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "drill daemon", "version": env!("CARGO_PKG_VERSION")},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}
