//! userlens-profile
