//! blockmat's integration tests, one binary: each file of this directory
//! is a module (one binary links once instead of four times).

mod common;

mod algebra;
mod interleave;
mod printing;
mod solve;
