//! `Sforce-Limit-Info`: Salesforce reports the org's daily API usage on every REST response
//! (`api-usage=25/15000`, sometimes followed by `; per-app-api-usage=17/250(appName=…)`).

/// The org's API usage over the last 24 hours, as the latest response reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    /// Parses the header value; `None` when it carries no `api-usage=used/max` item.
    pub fn parse(header: &str) -> Option<ApiUsage> {
        header
            .split([';', ','])
            .map(str::trim)
            .find_map(|item| item.strip_prefix("api-usage="))
            .and_then(|value| {
                let (used, max) = value.split_once('/')?;
                Some(ApiUsage {
                    used: used.trim().parse().ok()?,
                    max: max.trim().parse().ok()?,
                })
            })
    }

    /// Calls left in the allowance (zero when it is spent).
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_header_is_parsed() {
        assert_eq!(
            ApiUsage::parse("api-usage=25/15000"),
            Some(ApiUsage {
                used: 25,
                max: 15000
            })
        );
    }

    #[test]
    fn per_app_usage_after_the_org_usage_is_ignored() {
        let usage =
            ApiUsage::parse("api-usage=18/5000; per-app-api-usage=17/250(appName=sample-app)")
                .unwrap();
        assert_eq!((usage.used, usage.max, usage.remaining()), (18, 5000, 4982));
    }

    #[test]
    fn header_without_api_usage_is_none() {
        assert_eq!(ApiUsage::parse("per-app-api-usage=17/250"), None);
        assert_eq!(ApiUsage::parse("api-usage=x/5000"), None);
    }
}
