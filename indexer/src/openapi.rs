//! The OpenAPI 3.1 document of the REST API, derived by `utoipa` from the handlers' annotations
//! in [`crate::api`] and the response types (`#[derive(ToSchema)]`), so it cannot drift from the
//! code. A test checks that every route in `api::routes` is documented and nothing else is.

use crate::api::{self, ErrorBody};
use crate::limits::Limits;
use crate::{epoch_query, query, schema};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "DeepNode indexer API",
        description = "Contract events of a DeepNode deployment (tasks, models, nodes, stakes, audits, disputes, slashes) indexed into SQLite. \
            Addresses are EIP-55 checksummed, amounts are decimal strings in wei, times are unix seconds of the block. \
            Every route answers 414, 429 and 503 when a request is over the API's limits."
    ),
    paths(
        api::health,
        api::list_models,
        api::get_model,
        api::list_nodes,
        api::get_node,
        api::list_tasks,
        api::get_task,
        api::list_audits,
        api::list_epochs,
        api::get_epoch,
        api::get_reward,
        api::get_model_status,
        api::get_node_trust,
        api::get_leaderboard,
        api::openapi_doc,
        api::deployment_doc,
        api::metrics_text,
    ),
    // the schemas only parameters refer to (utoipa collects those of the bodies by itself)
    components(schemas(
        ErrorBody,
        schema::Address,
        schema::Decimal,
        schema::NonNegativeInteger,
        query::TaskStatus,
        epoch_query::LeaderboardRole,
    )),
    tags(
        (name = "tasks", description = "Inference tasks: inputs and outputs, fees, states, trails and audit records"),
        (name = "models", description = "The model registry: models, their workers, usage and measured quality"),
        (name = "nodes", description = "Workers and validators: stakes, jail, slashes, audit records, trust"),
        (name = "audits", description = "The validation layer: verdicts and the disputes they opened"),
        (name = "epochs", description = "Computed epochs: reports, rewards with proofs, model status leaves, leaderboards"),
        (name = "meta", description = "The indexer itself: progress, deployment, this document, metrics"),
    )
)]
struct ApiDoc;

/// The refusals of the API's limits ([`crate::limits`]), which every route may answer.
fn limit_responses() -> [(&'static str, utoipa::openapi::Response); 3] {
    let limits = Limits::default();
    let error = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build()
    };
    let response = |description: String| {
        ResponseBuilder::new()
            .description(description)
            .content("application/json", error())
    };
    [
        (
            "414",
            response(format!(
                "the request URI is longer than {} bytes (`uri_too_long`)",
                limits.max_uri_bytes
            ))
            .build(),
        ),
        (
            "429",
            response(
                "this client IP is over its request rate (`rate_limited`); retry after the \
                 seconds in retry-after"
                    .into(),
            )
            .header(
                "retry-after",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("seconds to wait before the next request"))
                    .build(),
            )
            .build(),
        ),
        (
            "503",
            response(
                "the request took longer than the server's timeout and was abandoned (`timeout`)"
                    .into(),
            )
            .build(),
        ),
    ]
}

/// The document served at `/openapi.json`: the derived one, plus the limits' responses added to
/// every operation (they come from the layers of [`crate::limits`], not from the handlers).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let limits = limit_responses();
    for item in doc.paths.paths.values_mut() {
        let operations: [&mut Option<Operation>; 8] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for op in operations.into_iter().flatten() {
            for (code, response) in &limits {
                op.responses
                    .responses
                    .entry((*code).to_string())
                    .or_insert_with(|| response.clone().into());
            }
        }
    }
    doc
}
