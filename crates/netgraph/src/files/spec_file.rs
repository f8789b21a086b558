//! The JSON network spec (see [`crate::NetSpec`] for the format).

use std::path::Path;

use crate::error::{NetError, Result};
use crate::files::io_err;
use crate::network::Network;
use crate::spec::NetSpec;

/// Reads a JSON spec and builds its network; unknown keys are rejected.
pub fn load_spec(path: impl AsRef<Path>) -> Result<Network> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let spec: NetSpec =
        serde_json::from_str(&text).map_err(|source| NetError::Json { path: path.to_path_buf(), source })?;
    Network::from_spec(spec)
}

/// Writes the network's spec as pretty JSON.
pub fn save_spec(net: &Network, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let spec = net.spec().ok_or(NetError::NoSpec)?;
    let text =
        serde_json::to_string_pretty(&spec).map_err(|source| NetError::Json { path: path.to_path_buf(), source })?;
    std::fs::write(path, text + "\n").map_err(io_err(path))
}
