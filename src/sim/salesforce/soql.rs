//! SOQL subset (being built).
