//! netgraph
