//! One module per command, each a `run(deps, args)` over the traits in `Deps`.
