//! sfwa placeholder
pub mod sim;
