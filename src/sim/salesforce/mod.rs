//! A wire-faithful Salesforce org: OAuth, REST, collections, SOQL, CometD streaming, limits and faults.
pub mod ids;
pub mod schema;
pub mod soql;
pub mod streaming;
