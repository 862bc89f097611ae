//! Integration tests of weft's AIR interpreter (one binary, a module per area).

mod conformance;
mod net;
mod parser;
mod props;
mod robustness;
mod signatures;
