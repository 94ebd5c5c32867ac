//! `kite-setup token`: today's access token on stdout and nothing else.

use crate::error::Error;
use crate::secret::Secret;

use super::Ctx;

pub fn run(ctx: &Ctx<'_>) -> Result<u8, Error> {
    let meta = ctx.require_profile()?;
    let store = ctx.store_for(&meta)?;
    ctx.mention_pending_rotation(store.as_ref());
    let session = ctx.require_session(store.as_ref())?;
    // A wrapped copy, so the line with the token is wiped once written.
    ctx.ui
        .data(Secret::new(format!("{}\n", session.access_token.expose())).expose());
    Ok(0)
}
