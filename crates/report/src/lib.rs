//! userlens-report
