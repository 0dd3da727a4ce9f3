//! `POST /.plait/compact/{path}`: compact one document now, instead of waiting for the
//! background pass. Uses the configured retention rule for the path, or `versions=N` /
//! `days=D` in the query. Answers what was folded, the new merge horizon, and the bytes.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::hub::RetentionRule;

use super::query;
use super::{ApiError, AppState};

/// The handler.
pub async fn compact(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let path = query::endpoint_target(&req, &[Method::POST])?;
    let mut words = vec![path.clone()];
    for (key, value) in query::params(&req)? {
        match key.as_str() {
            "versions" | "days" => words.push(format!("{key}={value}")),
            _ => return Err(ApiError::BadQuery(format!("unknown parameter {key:?}; use versions and days"))),
        }
    }
    let rule = if words.len() > 1 {
        words.join(" ").parse::<RetentionRule>().map_err(ApiError::BadQuery)?
    } else {
        state.settings.retention.rule_for(&path).cloned().ok_or_else(|| {
            ApiError::BadQuery(format!("no retention rule compacts {path}; pass versions=N and/or days=D"))
        })?
    };
    if state.hub.file(&path).await?.is_some() {
        let dropped = state.hub.prune_file(&path, &rule).await?;
        let body = json!({ "path": path, "kind": "file", "dropped_versions": dropped });
        return Ok((StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response());
    }
    let report = state.hub.compact(&path, &rule).await?;
    let body = json!({
        "path": path,
        "compacted": report.horizon.is_some(),
        "horizon": report.horizon.as_ref().map(|h| h.ids().to_vec()),
        "folded_writes": report.folded_writes,
        "stored_bytes_before": report.bytes_before,
        "stored_bytes_after": report.bytes_after,
    });
    Ok((StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response())
}
