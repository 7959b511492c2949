//! "Template catalog": whether sfwa can read the account's message templates, which it checks
//! every template send against (`pipeline::catalog`). Not a failure when it cannot: sends then
//! go unchecked and WhatsApp judges them; the line says what is lost and how to get it back.

use crate::config::Settings;
use crate::doctor::report::{Check, Outcome};
use crate::whatsapp::WhatsAppClient;

pub(in crate::doctor) const TEMPLATE_CATALOG: &str = "Template catalog";

/// Lists the account's templates once (the first page is enough to know it can be read).
pub(in crate::doctor) async fn check_template_catalog(
    client: &WhatsAppClient,
    settings: &Settings,
) -> Check {
    let waba = settings.whatsapp.business_account_id.trim();
    if waba.is_empty() {
        return Check::new(
            TEMPLATE_CATALOG,
            Outcome::Info(
                "whatsapp.business_account_id (waba_id) is not set: template sends are not \
                 checked before they leave (a paused template or a wrong parameter count is \
                 found out only by WhatsApp's refusal); set it to the WhatsApp Business \
                 Account ID to turn the catalog on"
                    .into(),
            ),
        );
    }
    match client.catalog(waba, None).await {
        Ok(templates) => {
            let approved = templates.iter().filter(|t| t.is_approved()).count();
            Check::pass(
                TEMPLATE_CATALOG,
                format!(
                    "account {waba} lists {} templates ({approved} approved); template sends \
                     are checked against them",
                    templates.len()
                ),
            )
        }
        Err(error) => Check::new(
            TEMPLATE_CATALOG,
            Outcome::Info(format!(
                "warning: the account's templates cannot be read ({error}); template sends go \
                 unchecked and WhatsApp judges them. Give the token's system user the \
                 whatsapp_business_management permission on account {waba}"
            )),
        ),
    }
}
