//! userlens-synth
