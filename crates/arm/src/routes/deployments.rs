//! `.../sites/{name}/deploymentStatus[/{id}]`: what the Azure CLI polls after a zip deploy until
//! `RuntimeSuccessful` or a failure state. The records themselves belong to the platform's
//! deployment side (Kudu); this only shapes them as ARM resources.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Call, not_allowed, ok};
use crate::Arm;
use crate::error::{ArmError, ArmResult};
use crate::model::WebApp;

fn resource(arm: &Arm, app: &WebApp, id: &str, properties: Value) -> Value {
    let mut r = json!({
        "id": format!("{}/deploymentStatus/{id}", app.id(&arm.config.subscription_id)),
        "name": id,
        "type": "Microsoft.Web/sites/deploymentStatus",
        "location": app.location,
    });
    r["properties"] = properties;
    r
}

pub(crate) async fn handle(
    arm: &Arm,
    call: &Call,
    app: &WebApp,
    id: Option<&str>,
) -> ArmResult<Response> {
    if call.method != Method::GET {
        return not_allowed(call, "deploymentStatus");
    }
    match id {
        None => {
            let value: Vec<Value> = arm
                .runtime
                .deployment_statuses(&app.name)
                .await
                .into_iter()
                .map(|(id, props)| resource(arm, app, &id, props))
                .collect();
            ok(json!({"value": value, "nextLink": null}))
        }
        Some(id) => {
            let props = arm
                .runtime
                .deployment_status(&app.name, Some(id))
                .await
                .ok_or_else(|| {
                    ArmError::not_found(
                        &format!("Microsoft.Web/sites/{}/deploymentStatus", app.name),
                        id,
                        &app.group,
                    )
                })?;
            ok(resource(arm, app, id, props))
        }
    }
}
