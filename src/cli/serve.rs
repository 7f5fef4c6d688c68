//! `ftpgate serve`.

use argh::FromArgs;

use super::{Ctx, Failure, Outcome};

/// run the gateway daemon (owns the state directory, answers the control socket)
#[derive(FromArgs)]
#[argh(subcommand, name = "serve")]
pub struct ServeArgs {}

pub fn run(ctx: &Ctx, _args: ServeArgs) -> Outcome {
    crate::daemon::run(&ctx.state).map_err(|e| Failure::runtime(e.to_string()))
}
