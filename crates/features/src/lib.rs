//! userlens-features
