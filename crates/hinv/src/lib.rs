//! hinv
