//! `kite-setup token`: today's access token on stdout and nothing else.

use crate::error::Error;
use crate::secret::Secret;

use super::Ctx;

pub fn run(ctx: &Ctx<'_>) -> Result<u8, Error> {
    let profile = ctx.open_profile()?;
    ctx.mention_pending_rotation(profile.store());
    let session = profile.require_session(ctx.ports.clock.now())?;
    // A wrapped copy, so the line with the token is wiped once written.
    ctx.ui
        .data(Secret::new(format!("{}\n", session.access_token.expose())).expose());
    Ok(0)
}
