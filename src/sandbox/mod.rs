//! The emulated Kite (product.md "The sandbox").

use crate::cli::SandboxArgs;
use crate::error::Error;

pub fn run(_args: &SandboxArgs, _json: bool) -> Result<(), Error> {
    Err(Error::NotImplemented("sandbox"))
}
