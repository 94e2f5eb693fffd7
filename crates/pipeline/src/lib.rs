//! userlens-pipeline
