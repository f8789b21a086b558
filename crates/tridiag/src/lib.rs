//! tridiag
